"""A template's header and URL button parameters through the REST API: headerParameters and
buttonParameters beside the body's parameters, each filling exactly its component."""

import pytest

from campaigns.models import Campaign, Send
from tests.factories import MessageTemplateFactory

pytestmark = pytest.mark.django_db

SCHEDULE = {"localDate": "2031-03-01", "localTime": "09:00", "timeZone": "Europe/London"}


@pytest.fixture
def shop_template(organization):
    return MessageTemplateFactory(
        organization=organization,
        name="shop_sale",
        body_text="Hi {{1}}, {{2}} off!",
        components=[
            {"type": "HEADER", "format": "TEXT", "text": "Sale for {{1}}"},
            {"type": "BODY", "text": "Hi {{1}}, {{2}} off!"},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "QUICK_REPLY", "text": "Stop promotions"},
                    {"type": "URL", "text": "Shop", "url": "https://s.example/{{1}}"},
                ],
            },
        ],
    )


def shop_send(**overrides):
    return {
        "template": "shop_sale",
        "parameters": ["{{ lead.first_name }}", "20%"],
        "headerParameters": ["{{ lead.first_name|upper }}"],
        "buttonParameters": ["{{ lead.variables.coupon }}"],
        "schedule": SCHEDULE,
        **overrides,
    }


def error(message: str) -> dict:
    return {"statusCode": 400, "message": message, "error": "Bad Request"}


def test_header_and_button_parameters_are_stored_after_the_bodys_and_read_back(
    api, body, shop_template
):
    response = api.post("campaigns", body(id="c1", sends=[shop_send()]))

    assert response.status_code == 201
    [send] = response.json()["campaign"]["sends"]
    assert (send["parameters"], send["headerParameters"], send["buttonParameters"]) == (
        ["{{ lead.first_name }}", "20%"],
        ["{{ lead.first_name|upper }}"],
        ["{{ lead.variables.coupon }}"],
    )
    assert api.get("campaigns/c1").json()["campaign"]["sends"] == [send]
    # The admin's mapping: the body's entries, then the header's, then the buttons'.
    assert Send.objects.get().parameter_mapping == [
        "{{ lead.first_name }}",
        '"20%"',
        "{{ lead.first_name|upper }}",
        "{{ lead.variables.coupon }}",
    ]


def test_a_body_only_send_reads_back_empty_header_and_button_lists(api, body):
    [send] = api.post("campaigns", body()).json()["campaign"]["sends"]

    assert (send["headerParameters"], send["buttonParameters"]) == ([], [])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"headerParameters": []},
         "sends[0].headerParameters: The template has 1 header parameter(s) (header {{1}}) but 0 given."),
        ({"buttonParameters": None},
         "sends[0].buttonParameters: expected a list of strings"),
        ({"buttonParameters": ["a", "b"]},
         "sends[0].buttonParameters: The template has 1 URL button parameter(s) (button Shop {{1}}) but 2 given."),
        ({"parameters": ["a"]},
         "sends[0].parameters: The template has 2 body parameter(s) ({{1}}, {{2}}) but 1 given."),
        ({"headerParameters": [""]},
         "sends[0].headerParameters[0]: an empty literal would send blank text"),
        ({"buttonParameters": ["{{ lead.variables.nope }}"]},
         "sends[0].buttonParameters[0]: no lead of the audience has the variable 'nope' (the audience's columns: coupon)"),
    ],
)  # fmt: skip
def test_a_header_or_button_parameter_left_out_or_wrong_is_a_400_naming_it(
    api, body, shop_template, change, message
):
    response = api.post("campaigns", body(sends=[shop_send(**change)]))

    assert response.status_code == 400
    assert response.json() == error(message)
    assert not Campaign.objects.exists()


def test_header_parameters_for_a_template_without_a_header_are_refused(api, body):
    send = {"template": "spring_sale", "parameters": ["a", "b"], "headerParameters": ["x"]}

    response = api.post("campaigns", body(sends=[send]))

    assert response.json() == error(
        "sends[0].headerParameters: The template has 0 header parameter(s) but 1 given."
    )


def test_the_preview_renders_the_header_and_button_parameters_for_the_lead(
    api, body, shop_template, segment
):
    campaign = api.post("campaigns", body(id="c1", sends=[shop_send()])).json()["campaign"]
    lead = segment.leads.order_by("pk").first()

    response = api.post(
        f"campaigns/c1/sends/{campaign['sends'][0]['id']}/preview", {"leadId": str(lead.pk)}
    )

    assert response.json() == {
        "parameters": ["Ann0", "20%"],
        "headerParameters": ["ANN0"],
        "buttonParameters": ["C0"],
        "body": "Hi Ann0, 20% off!",
        "skipped": None,
    }
