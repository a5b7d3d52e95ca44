"""Template parameters as Django templates over the lead, in a sandbox that reaches nothing
but the lead's own data; the old entries (field, variable, quoted literal) still work."""

import pytest

from campaigns.rendering import (
    MAX_LOOP_ITEMS,
    MAX_PARAMETER_LENGTH,
    MissingParameter,
    api_parameter,
    compile_parameters,
    render_parameters,
    stored_parameter,
    validate_parameter_mapping,
)
from messaging.models import parameter_slots
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def body_slots(count: int):
    """The slots of a body-only template with `count` parameters."""
    return parameter_slots(" ".join(f"{{{{{n}}}}}" for n in range(1, count + 1)), [])


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
        ("first_name", "Ann"),
        ("variables.coupon", "SPRING"),
        ('"20% off"', "20% off"),
        ("{{ lead.first_name }}\n  and\tfriends", "Ann and friends"),
    ],
)  # fmt: skip
def test_expressions_and_the_old_entries_render_for_a_lead(lead, entry, text):
    assert validate_parameter_mapping([entry], body_slots(1)) == []
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
    [message] = validate_parameter_mapping(["first_name", entry], body_slots(2))

    assert message.startswith("Parameter {{2}}: template syntax error: ")
    assert problem in message


def each(entries, lead, **options) -> list[str | None]:
    """What each entry renders on its own; None where it would be a missing parameter."""
    rendered = []
    for entry in entries:
        try:
            [text] = render_parameters([entry], lead, **options)
        except MissingParameter:
            text = None
        rendered.append(text)
    return rendered


def test_the_template_sees_data_not_the_model(lead):
    entries = [
        "{{ lead.delete }}{{ lead.save }}{{ lead.audience.organization.name }}",
        "{{ lead.variables.tags.pop }}{{ lead.variables.clear }}",
        '{{ lead.variables.tags|join:"," }}',
    ]

    assert each(entries, lead) == [None, None, "a,b"]
    lead.refresh_from_db()
    assert lead.variables == {"coupon": "SPRING", "tags": ["a", "b"]}


def test_output_and_padding_are_bounded(lead):
    rendered = each(
        [
            '{{ lead.first_name|ljust:"100000000" }}',
            "{% for c in lead.first_name %}" + "{{ lead.last_name }}" * 400 + "{% endfor %}",
        ],
        lead,
    )

    assert rendered[0] is None
    assert len(rendered[1]) == MAX_PARAMETER_LENGTH


def test_api_spelling_round_trips_to_the_stored_mapping():
    assert stored_parameter("20% off") == '"20% off"'
    assert stored_parameter("{{ lead.first_name }}") == "{{ lead.first_name }}"
    assert [api_parameter(e) for e in ['"20% off"', "first_name", "variables.coupon"]] == [
        "20% off",
        "{{ lead.first_name }}",
        "{{ lead.variables.coupon }}",
    ]


def test_a_filter_that_refuses_a_leads_value_is_a_missing_parameter(lead):
    lead.variables = {"n": "abc"}

    rendered = each(
        [
            '{{ lead.first_name|ljust:"abc" }}',
            "{{ lead.variables.n|divisibleby:3 }}",
            '{{ lead.first_name|date:"r" }}',
            "{{ lead.first_name }}",
        ],
        lead,
    )

    assert rendered == [None, None, None, "Ann"]


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


# --- No blank or wrong text (issue 11, point 3) ------------------------------------------------


@pytest.mark.parametrize(
    ("mapping", "lead_fields", "position"),
    [
        (["first_name", "email"], {"email": ""}, 2),
        (["variables.coupon"], {"variables": {"coupon": ""}}, 1),
        (["variables.coupon"], {"variables": {"coupon": "   "}}, 1),
        (["variables.coupon"], {"variables": {}}, 1),
        (["{{ lead.variables.coupon }}", "first_name"], {"variables": {"coupon": None}}, 1),
        (["{{ receiver.name }}"], {"first_name": "", "last_name": ""}, 1),
        (["{% if lead.variables.vip %}VIP{% endif %}"], {"variables": {"vip": ""}}, 1),
        (['{{ lead.first_name|date:"r" }}'], {}, 1),
    ],
)
def test_a_parameter_that_renders_empty_raises_missing_parameter_naming_it(
    lead, mapping, lead_fields, position
):
    for name, value in lead_fields.items():
        setattr(lead, name, value)

    with pytest.raises(MissingParameter) as caught:
        render_parameters(mapping, lead)

    assert caught.value.position == position
    assert caught.value.entry == mapping[position - 1]
    assert f"Parameter {{{{{position}}}}}" in str(caught.value)


def test_the_compiled_renderer_raises_per_lead_and_renders_the_others(lead):
    render = compile_parameters(["first_name", "variables.coupon"])
    blank = LeadFactory(first_name="Bo", variables={"coupon": ""})

    assert render(lead) == ["Ann", "SPRING"]
    with pytest.raises(MissingParameter):
        render(blank)
    assert render(lead) == ["Ann", "SPRING"]


def test_seed_003_receiver_and_sender_render_from_the_lead_and_the_business(lead):
    lead.email, lead.external_id, lead.phone_e164 = "ann@example.com", "crm-7", "+447400123456"
    sender = {"name": "Acme", "phone": "+44 20 7946 0000", "id": "106540352242922"}
    entries = [
        "{{ receiver.name }}",
        "{{receiver.first_name}} {{ receiver.last_name }}",
        "{{ receiver.phone }}",
        "{{ receiver.email }}",
        "{{ receiver.id }}",
        "{{ receiver.coupon }}",
        "Hi {{ receiver.name }}, I'm {{ sender.name }}!",
        "{{ sender.phone }} / {{ sender.id }}",
    ]

    assert validate_parameter_mapping(entries, body_slots(len(entries)), {"coupon", "tags"}) == []
    assert render_parameters(entries, lead, sender=sender) == [
        "Ann Lee",
        "Ann Lee",
        "+447400123456",
        "ann@example.com",
        "crm-7",
        "SPRING",
        "Hi Ann Lee, I'm Acme!",
        "+44 20 7946 0000 / 106540352242922",
    ]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("{{ channel.id }}", "channel is not available"),
        ("{{ custom }}", "unknown variable 'custom'"),
        ("{{ lead.nothing }}", "lead.nothing is not a lead field"),
        ("{{ sender.email }}", "sender.email is not available"),
        ("{{ receiver }}", "name a field of receiver"),
        ("{% firstof lead.email user.name %}", "unknown variable 'user'"),
        ("{{ lead.first_name|default:channel.name }}", "channel is not available"),
        ('""', "an empty literal would send blank text"),
    ],
)
def test_names_the_product_cannot_fill_are_refused_naming_them(entry, problem):
    [message] = validate_parameter_mapping([entry], body_slots(1))

    assert message.startswith("Parameter {{1}}: ")
    assert problem in message


@pytest.mark.parametrize(
    "entry",
    [
        "variables.nope",
        "{{ lead.variables.nope }}",
        '{{ lead.variables.nope|default:"X" }}',
        "{{ receiver.nope }}",
        "{% if lead.variables.nope %}x{% else %}y{% endif %}",
        "{% for t in lead.variables.nope %}{{ t }}{% endfor %}",
    ],
)
def test_a_variable_no_lead_has_is_refused_with_the_audiences_columns(entry):
    [message] = validate_parameter_mapping([entry], body_slots(1), {"coupon", "city"})

    assert message == (
        "Parameter {{1}}: no lead of the audience has the variable 'nope' "
        "(the audience's columns: city, coupon)"
    )


def test_loop_and_with_names_are_the_templates_own(lead):
    entries = [
        "{% for t in lead.variables.tags %}{{ t }}{{ forloop.counter }}{% endfor %}",
        "{% with n=receiver.name %}{{ n|upper }}{% endwith %}",
    ]

    assert validate_parameter_mapping(entries, body_slots(2), {"tags"}) == []
    assert render_parameters(entries, lead) == ["a1b2", "ANN LEE"]
