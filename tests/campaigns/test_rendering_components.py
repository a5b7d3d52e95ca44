"""Header and URL button parameters: a template's slots, how a mapping fills each of them,
and the components Meta is sent. Every parameter, wherever it is, is filled or refused."""

import pytest

from campaigns.rendering import (
    MissingParameter,
    by_component,
    compile_parameters,
    validate_parameter_mapping,
)
from messaging.client import template_components
from messaging.models import ParameterSlot
from tests.factories import LeadFactory, MessageTemplateFactory

pytestmark = pytest.mark.django_db

SHOP_COMPONENTS = [
    {"type": "HEADER", "format": "TEXT", "text": "Sale for {{1}}"},
    {"type": "BODY", "text": "Hi {{1}}, {{2}} off!"},
    {"type": "FOOTER", "text": "Reply STOP to opt out"},
    {
        "type": "BUTTONS",
        "buttons": [
            {"type": "QUICK_REPLY", "text": "Stop promotions"},
            {"type": "URL", "text": "Shop", "url": "https://s.example/{{1}}"},
            {"type": "URL", "text": "Terms", "url": "https://s.example/terms"},
        ],
    },
]


@pytest.fixture
def shop():
    return MessageTemplateFactory(body_text="Hi {{1}}, {{2}} off!", components=SHOP_COMPONENTS)


def test_a_templates_slots_are_the_body_then_the_text_header_then_each_url_button(shop):
    assert [slot.label for slot in shop.parameter_slots] == [
        "{{1}}",
        "{{2}}",
        "header {{1}}",
        "button Shop {{1}}",
    ]
    # Meta's index of a button is its place among all the template's buttons.
    assert shop.parameter_slots[-1] == ParameterSlot(
        "button", 1, 1, "Shop", "https://s.example/{{1}}"
    )


def test_a_media_header_has_no_text_parameter_to_fill():
    template = MessageTemplateFactory(
        body_text="Hi {{1}}",
        components=[{"type": "HEADER", "format": "IMAGE", "text": "{{1}}"}],
    )

    assert [slot.label for slot in template.parameter_slots] == ["{{1}}"]


def test_a_mapping_that_fills_only_the_body_is_refused_naming_what_is_left(shop):
    problems = validate_parameter_mapping(["first_name", '"20%"'], shop.parameter_slots)

    assert problems == [
        "The template has 4 parameter(s) (2 in the body, header {{1}}, button Shop {{1}}) but "
        "the mapping gives 2: header {{1}}, button Shop {{1}} not filled."
    ]


def test_a_wrong_header_or_button_entry_is_named_by_its_place(shop):
    problems = validate_parameter_mapping(
        ["first_name", '"20%"', "nickname", "variables.coupon"], shop.parameter_slots, {"coupon"}
    )

    [problem] = problems
    assert problem.startswith("Parameter header {{1}}: 'nickname' is not a lead field")


def test_every_slot_renders_for_the_lead_and_splits_by_component(shop):
    lead = LeadFactory(first_name="Zoë", variables={"coupon": "AB12"})
    render = compile_parameters(
        ["first_name", '"20%"', "{{ lead.first_name|upper }}", "variables.coupon"],
        slots=shop.parameter_slots,
    )

    values = render(lead)

    assert values == ["Zoë", "20%", "ZOË", "AB12"]
    assert by_component(values, shop.parameter_slots) == (["Zoë", "20%"], ["ZOË"], ["AB12"])


def test_an_empty_button_parameter_skips_the_lead_naming_the_button(shop):
    lead = LeadFactory(first_name="Zoë", variables={})
    render = compile_parameters(
        ["first_name", '"20%"', "first_name", "{{ lead.variables.coupon }}"],
        slots=shop.parameter_slots,
    )

    with pytest.raises(MissingParameter) as missing:
        render(lead)

    assert str(missing.value) == (
        "Parameter button Shop {{1}} ({{ lead.variables.coupon }}) is empty for this lead"
    )


def test_the_components_meta_is_sent_are_header_body_then_each_button_by_its_index(shop):
    assert template_components(["Zoë", "20%", "ZOË", "AB12"], shop.parameter_slots) == [
        {"type": "header", "parameters": [{"type": "text", "text": "ZOË"}]},
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Zoë"}, {"type": "text", "text": "20%"}],
        },
        {
            "type": "button",
            "sub_type": "url",
            "index": "1",
            "parameters": [{"type": "text", "text": "AB12"}],
        },
    ]


def test_a_body_only_template_sends_the_body_component_it_always_did():
    assert template_components(["Zoë"]) == [
        {"type": "body", "parameters": [{"type": "text", "text": "Zoë"}]}
    ]
    assert template_components([]) == []
