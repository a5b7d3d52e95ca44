"""Template parameters as Django templates over the lead, in a sandbox that reaches nothing
but the lead's own data; the old entries (field, variable, quoted literal) still work."""

import pytest

from campaigns.rendering import (
    MAX_LOOP_ITEMS,
    MAX_PARAMETER_LENGTH,
    api_parameter,
    render_parameters,
    stored_parameter,
    validate_parameter_mapping,
)
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def lead():
    return LeadFactory(
        first_name="Ann", last_name="Lee", variables={"coupon": "SPRING", "tags": ["a", "b"]}
    )


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        ("{{ lead.first_name }}", "Ann"),
        ('{{ lead.variables.coupon|default:"WELCOME" }}', "SPRING"),
        ('{{ lead.variables.missing|default:"WELCOME" }}', "WELCOME"),
        ("{% if lead.variables.coupon %}Use {{ lead.variables.coupon }}{% else %}-{% endif %}", "Use SPRING"),
        ("{% for tag in lead.variables.tags %}{{ tag }};{% endfor %}", "a;b;"),
        ("{% with name=lead.first_name|add:lead.last_name %}{{ name|lower }}{% endwith %}", "annlee"),
        ("{% firstof lead.email lead.first_name %}", "Ann"),
        ("{{ lead.nothing }}{{ lead.variables.nothing.deeper }}", ""),
        ("first_name", "Ann"),
        ("variables.coupon", "SPRING"),
        ('"20% off"', "20% off"),
        ("{{ lead.first_name }}\n  and\tfriends", "Ann and friends"),
    ],
)  # fmt: skip
def test_expressions_and_the_old_entries_render_for_a_lead(lead, entry, text):
    assert validate_parameter_mapping([entry], 1) == []
    assert render_parameters([entry], lead) == [text]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("{% load static %}", "{% load %} is not allowed: only the if, for, with, firstof tags are"),
        ('{% include "admin/base.html" %}', "{% include %} is not allowed"),
        ('{% extends "admin/base.html" %}', "{% extends %} is not allowed"),
        ("{% debug %}", "{% debug %} is not allowed"),
        ('{% url "admin:index" %}', "{% url %} is not allowed"),
        ("{% csrf_token %}", "{% csrf_token %} is not allowed"),
        ("{{ lead.__class__ }}", "Variables and attributes may not begin with underscores"),
        ("{% for a in lead.first_name %}{% for b in lead.last_name %}{% endfor %}{% endfor %}",
         "{% for %} loops may not nest"),
        ("{% if lead.first_name %}", "Unclosed tag"),
        ("{{ lead.first_name|nope }}", "Invalid filter: 'nope'"),
    ],
)  # fmt: skip
def test_escapes_and_syntax_errors_are_refused_naming_the_parameter(entry, problem):
    [message] = validate_parameter_mapping(["first_name", entry], 2)

    assert message.startswith("Parameter {{2}}: template syntax error: ")
    assert problem in message


def test_the_template_sees_data_not_the_model(lead):
    entries = [
        "{{ lead.delete }}{{ lead.save }}{{ lead.audience.organization.name }}",
        "{{ lead.variables.tags.pop }}{{ lead.variables.clear }}",
        '{{ lead.variables.tags|join:"," }}',
    ]

    assert render_parameters(entries, lead) == ["", "", "a,b"]
    lead.refresh_from_db()
    assert lead.variables == {"coupon": "SPRING", "tags": ["a", "b"]}


def test_output_and_padding_are_bounded(lead):
    rendered = render_parameters(
        [
            '{{ lead.first_name|ljust:"100000000" }}',
            "{% for c in lead.first_name %}" + "{{ lead.last_name }}" * 400 + "{% endfor %}",
        ],
        lead,
    )

    assert rendered[0] == ""
    assert len(rendered[1]) == MAX_PARAMETER_LENGTH


def test_api_spelling_round_trips_to_the_stored_mapping():
    assert stored_parameter("20% off") == '"20% off"'
    assert stored_parameter("{{ lead.first_name }}") == "{{ lead.first_name }}"
    assert [api_parameter(e) for e in ['"20% off"', "first_name", "variables.coupon"]] == [
        "20% off",
        "{{ lead.first_name }}",
        "{{ lead.variables.coupon }}",
    ]


def test_a_filter_that_refuses_a_leads_value_renders_empty_text(lead):
    lead.variables = {"n": "abc"}

    rendered = render_parameters(
        [
            '{{ lead.first_name|ljust:"abc" }}',
            "{{ lead.variables.n|divisibleby:3 }}",
            '{{ lead.first_name|date:"r" }}',
            "{{ lead.first_name }}",
        ],
        lead,
    )

    assert rendered == ["", "", "", "Ann"]


def test_loops_and_variables_cannot_build_huge_text(lead):
    """A loop over a long variable, echoing it 45 times per turn, once built tens of MB."""
    lead.variables = {"s": "x" * 100_000}
    loop = "{% for c in lead.variables.s|make_list %}" + "{{ lead.variables.s }}" * 45
    loop += "{% endfor %}"

    turns, echoed = render_parameters(
        ["{% for c in lead.variables.s|make_list %}.{% endfor %}", loop], lead
    )

    assert turns == "." * MAX_LOOP_ITEMS
    assert len(echoed) == MAX_PARAMETER_LENGTH
