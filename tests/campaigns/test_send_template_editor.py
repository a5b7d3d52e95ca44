"""The send editor's template parameters without JSON (issue 15.4), over HTTP: which templates
are offered, the form errors, the live preview endpoint, and a new send's defaults."""

import json

import pytest
from django.forms.models import model_to_dict
from django.urls import reverse

from audiences.models import Lead
from campaigns.models import Campaign
from messaging.models import Category, MessageTemplate
from messaging.time_zones import organization_time_zone
from tests.campaigns.editor import ADD_URL, change_url, new_campaign_data, ready_campaign, send_row
from tests.factories import (
    AudienceFactory,
    CampaignFactory,
    LeadFactory,
    MessageTemplateFactory,
    OptOutFactory,
    OrganizationFactory,
    SendFactory,
    UserFactory,
    WhatsAppNumberFactory,
)
from tests.setter.admin_forms import change_form_post_data

pytestmark = pytest.mark.django_db

PREVIEW_URL = reverse("admin:campaigns_campaign_send_preview")
OFFERED_ONLY = (
    "Pick one of the templates offered: the organization's APPROVED templates of the number's WABA."
)


@pytest.fixture
def org():
    return OrganizationFactory(name="Org A")


@pytest.fixture
def marketer(client, org):
    client.force_login(UserFactory(organization=org))
    return client


def send_form_errors(response) -> dict:
    return response.context["inline_admin_formsets"][0].formset.errors[0]


def preview(client, template, mapping=(), *, audiences=(), number=None, category=None, **extra):
    query = {
        "template": str(template.pk),
        "category": category or template.category,
        "mapping": json.dumps(list(mapping)),
        "audiences": [str(a.pk) for a in audiences],
        **extra,
    }
    if number is not None:
        query["number"] = str(number.pk)
    return client.get(PREVIEW_URL, query)


# --- Which templates are offered -------------------------------------------------------------


def test_the_template_drop_down_offers_the_numbers_approved_templates_with_their_category(
    marketer, org
):
    campaign = ready_campaign(sends=1, organization=org)
    waba = campaign.whatsapp_number.waba_id
    current = campaign.sends.get().template
    offered = [
        MessageTemplateFactory(organization=org, waba_id=waba, name="same_waba"),
        MessageTemplateFactory(organization=org, name="utility", category=Category.UTILITY),
    ]
    refused = [
        MessageTemplateFactory(organization=org, name="refused_pending", status="PENDING"),
        MessageTemplateFactory(organization=org, name="refused_rejected", status="REJECTED"),
        MessageTemplateFactory(organization=org, name="refused_other_waba", waba_id="999"),
        MessageTemplateFactory(organization=OrganizationFactory(), name="refused_other_org"),
    ]

    page = marketer.get(change_url(campaign))

    field = page.context["inline_admin_formsets"][0].formset.empty_form.fields["template"]
    assert set(field.queryset) == {current, *offered}
    html = page.content.decode()
    assert all(t.name not in html for t in refused)
    assert f'value="{offered[1].pk}" data-category="UTILITY"' in html


@pytest.mark.parametrize(
    ("template_fields", "message"),
    [
        ({"status": "PENDING"}, OFFERED_ONLY),
        ({"waba_id": "999"}, OFFERED_ONLY),
        ({"category": Category.UTILITY},
         "The template 'offer' is UTILITY: pick a MARKETING template for this send."),
    ],
)  # fmt: skip
def test_a_template_the_editor_does_not_offer_is_a_form_error(
    marketer, org, template_fields, message
):
    template = MessageTemplateFactory(organization=org, name="offer", **template_fields)

    response = marketer.post(ADD_URL, new_campaign_data(org, [send_row(0, template)]))

    assert response.status_code == 200
    assert message in " ".join(send_form_errors(response)["template"])
    assert not Campaign.objects.exists()


def test_a_send_whose_template_was_paused_since_keeps_it_until_the_marketer_changes_it(
    marketer, org
):
    campaign = ready_campaign(sends=1, organization=org)
    send = campaign.sends.get()
    MessageTemplate.objects.filter(pk=send.template_id).update(status="PAUSED")
    page = marketer.get(change_url(campaign))

    renamed = marketer.post(
        change_url(campaign), change_form_post_data(page, **{"sends-0-name": "Renamed"})
    )
    recategorised = marketer.post(
        change_url(campaign), change_form_post_data(page, **{"sends-0-category": "UTILITY"})
    )

    assert (
        send.template
        in page.context["inline_admin_formsets"][0].formset.forms[0].fields["template"].queryset
    )
    assert renamed.status_code == 302
    assert send_form_errors(recategorised)["template"] == [
        f"The template '{send.template.name}' is PAUSED: pick an APPROVED one."
    ]


# --- Form errors for the mapping --------------------------------------------------------------


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (["first_name", ""],
         "Parameter {{2}}: not mapped: choose one of the audience's columns or type a fixed text"),
        (["first_name", '""'], "Parameter {{2}}: an empty literal would send blank text"),
        (["first_name"], "The template has 2 parameter(s) but the mapping gives 1."),
    ],
)  # fmt: skip
def test_an_unmapped_or_blank_placeholder_is_a_form_error(marketer, org, mapping, message):
    template = MessageTemplateFactory(organization=org)
    row = send_row(0, template, parameter_mapping=json.dumps(mapping))

    response = marketer.post(ADD_URL, new_campaign_data(org, [row]))

    assert response.status_code == 200
    assert send_form_errors(response)["parameter_mapping"] == [message]
    assert not Campaign.objects.exists()


def shop_template(org):
    """A template with a text header parameter and a URL button parameter, as synced."""
    return MessageTemplateFactory(
        organization=org,
        components=[
            {"type": "HEADER", "format": "TEXT", "text": "Hello {{1}}"},
            {"type": "BODY", "text": "Hi {{1}}, your code is {{2}}."},
            {
                "type": "BUTTONS",
                "buttons": [{"type": "URL", "text": "Shop", "url": "https://x/{{1}}"}],
            },
        ],
    )


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (["first_name", '"X"'],
         "The template has 4 parameter(s) (2 in the body, header {{1}}, button Shop {{1}}) but "
         "the mapping gives 2: header {{1}}, button Shop {{1}} not filled."),
        (["first_name", '"X"', "", "variables.coupon"],
         "Parameter header {{1}}: not mapped: choose one of the audience's columns or type a "
         "fixed text"),
        (["first_name", '"X"', "first_name", '""'],
         "Parameter button Shop {{1}}: an empty literal would send blank text"),
    ],
)  # fmt: skip
def test_an_unfilled_header_or_button_parameter_is_a_form_error_naming_it(
    marketer, org, mapping, message
):
    row = send_row(0, shop_template(org), parameter_mapping=json.dumps(mapping))

    response = marketer.post(ADD_URL, new_campaign_data(org, [row]))

    assert response.status_code == 200
    assert send_form_errors(response)["parameter_mapping"] == [message]
    assert not Campaign.objects.exists()


def test_header_and_button_parameters_are_stored_after_the_bodys(marketer, org):
    mapping = ["first_name", '"X"', '"Spring"', "variables.coupon"]
    row = send_row(0, shop_template(org), parameter_mapping=json.dumps(mapping))

    response = marketer.post(ADD_URL, new_campaign_data(org, [row]))

    assert response.status_code == 302
    assert Campaign.objects.get().sends.get().parameter_mapping == mapping


def test_columns_and_fixed_text_are_stored_as_the_apis_mapping(marketer, org):
    template = MessageTemplateFactory(organization=org)
    row = send_row(0, template, parameter_mapping=json.dumps(["first_name", '"WELCOME10"']))

    response = marketer.post(ADD_URL, new_campaign_data(org, [row]))

    assert response.status_code == 302
    send = Campaign.objects.get().sends.get()
    assert send.parameter_mapping == ["first_name", '"WELCOME10"']


# --- The live preview ---------------------------------------------------------------------------


def test_the_preview_renders_the_first_eligible_lead_with_the_chosen_columns(marketer, org):
    number = WhatsAppNumberFactory(organization=org)
    audience = AudienceFactory(organization=org)
    opted_out = LeadFactory(audience=audience, first_name="Zed", variables={"coupon": "NO"})
    OptOutFactory(organization=org, phone_e164=opted_out.phone_e164)
    LeadFactory(audience=audience, first_name="Ann", variables={"coupon": "SPRING"})
    LeadFactory(audience=audience, first_name="Bob", variables={"coupon": "SUMMER", "city": "X"})
    template = MessageTemplateFactory(organization=org, body_text="Hi {{1}}, use {{2}} today")

    response = preview(
        marketer, template, ["first_name", "variables.coupon"], audiences=[audience], number=number
    )

    assert response.status_code == 200
    answer = response.json()
    assert answer["placeholders"] == [1, 2]
    assert answer["template"]["body"] == "Hi {{1}}, use {{2}} today"
    assert answer["columns"] == [
        "first_name", "last_name", "email", "external_id", "phone_e164",
        "variables.city", "variables.coupon",
    ]  # fmt: skip
    assert answer["lead"]["firstName"] == "Ann"
    assert (answer["parameters"], answer["text"]) == (["Ann", "SPRING"], "Hi Ann, use SPRING today")
    assert answer["problems"] == []


def test_the_preview_follows_each_choice_and_names_what_is_missing(marketer, org):
    audience = AudienceFactory(organization=org)
    LeadFactory(audience=audience, first_name="Ann", variables={"coupon": "SPRING"})
    template = MessageTemplateFactory(organization=org)

    fixed = preview(marketer, template, ["first_name", '"WELCOME"'], audiences=[audience]).json()
    unmapped = preview(marketer, template, ["first_name", ""], audiences=[audience]).json()
    no_audience = preview(marketer, template, ["first_name", '"WELCOME"']).json()

    assert fixed["text"] == "Hi Ann, your code is WELCOME."
    assert unmapped["text"] == ""
    assert unmapped["problems"] == [
        "Parameter {{2}}: not mapped: choose one of the audience's columns or type a fixed text"
    ]
    assert no_audience["problems"] == ["No lead of the chosen audiences can receive this send yet."]


def test_a_lead_whose_column_is_empty_would_be_skipped_and_the_preview_says_so(marketer, org):
    audience = AudienceFactory(organization=org)
    LeadFactory(audience=audience, first_name="", variables={"coupon": "SPRING"})
    template = MessageTemplateFactory(organization=org)

    answer = preview(
        marketer, template, ["first_name", "variables.coupon"], audiences=[audience]
    ).json()

    assert answer["text"] == ""
    assert answer["problems"] == [
        "Parameter {{1}} (first_name) is empty for this lead: that lead would be skipped."
    ]


def test_the_preview_offers_header_and_button_parameters_and_renders_them(marketer, org):
    audience = AudienceFactory(organization=org)
    LeadFactory(audience=audience, first_name="Ann", variables={"coupon": "SPRING"})
    template = shop_template(org)

    answer = preview(
        marketer, template, ["first_name", '"X"', "first_name", "variables.coupon"],
        audiences=[audience],
    ).json()  # fmt: skip

    assert answer["slots"] == ["{{1}}", "{{2}}", "header {{1}}", "button Shop {{1}}"]
    assert answer["placeholders"] == [1, 2]
    assert answer["problems"] == []
    assert answer["parameters"] == ["Ann", "X", "Ann", "SPRING"]
    assert answer["text"] == "Hi Ann, your code is X."
    assert answer["componentTexts"] == ["header: Hello Ann", "button Shop: https://x/SPRING"]


def test_the_preview_names_header_and_button_parameters_left_unfilled(marketer, org):
    answer = preview(marketer, shop_template(org), ["first_name", '"X"']).json()

    assert answer["problems"][0] == (
        "The template has 4 parameter(s) (2 in the body, header {{1}}, button Shop {{1}}) but the "
        "mapping gives 2: header {{1}}, button Shop {{1}} not filled."
    )


def test_the_preview_of_a_marketing_send_skips_a_us_lead_a_utility_one_reaches(marketer, org):
    audience = AudienceFactory(organization=org)
    LeadFactory(audience=audience, first_name="Ura", ingest_status=Lead.IngestStatus.INELIGIBLE_GEO)
    template = MessageTemplateFactory(organization=org, body_text="Hi {{1}}", category="UTILITY")

    utility = preview(marketer, template, ["first_name"], audiences=[audience]).json()
    marketing = preview(
        marketer, template, ["first_name"], audiences=[audience], category="MARKETING"
    ).json()

    assert utility["text"] == "Hi Ura"
    assert marketing["lead"] is None


def test_another_organizations_template_audience_or_number_is_not_found(marketer, org):
    theirs = OrganizationFactory()
    their_audience = AudienceFactory(organization=theirs)
    LeadFactory(audience=their_audience, first_name="Secret")
    own_template = MessageTemplateFactory(organization=org)
    their_template = MessageTemplateFactory(organization=theirs)

    responses = [
        preview(marketer, their_template, ["first_name", '"X"']),
        preview(marketer, own_template, ["first_name", '"X"'], audiences=[their_audience]),
        preview(
            marketer, own_template, ["first_name", '"X"'],
            number=WhatsAppNumberFactory(organization=theirs),
        ),
    ]  # fmt: skip

    assert [r.status_code for r in responses] == [404, 404, 404]
    assert all("Secret" not in r.content.decode() for r in responses)


def test_an_audience_of_another_of_the_staff_members_organizations_is_not_mixed_in(client, org):
    other = OrganizationFactory()
    user = UserFactory(organization=org)
    user.memberships.create(organization=other)
    client.force_login(user)
    their_audience = AudienceFactory(organization=other)
    template = MessageTemplateFactory(organization=org)

    response = preview(client, template, ["first_name", '"X"'], audiences=[their_audience])

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"lead": "1"}, "Unknown parameter(s): lead."),
        ({"category": "PROMO"}, "category: one of MARKETING, UTILITY."),
        ({"mapping": "not json"}, "mapping: a JSON list of strings."),
    ],
)
def test_a_malformed_preview_question_is_refused(marketer, org, extra, error):
    template = MessageTemplateFactory(organization=org)

    query = {"template": str(template.pk), "category": "MARKETING", "mapping": "[]", **extra}

    response = marketer.get(PREVIEW_URL, query)

    assert response.status_code == 400
    assert response.json() == {"error": error}


def test_the_preview_needs_a_staff_member(client, org):
    template = MessageTemplateFactory(organization=org)

    response = preview(client, template)

    assert response.status_code == 302  # to the admin's login
    assert "/login/" in response["Location"]


# --- A new send's defaults --------------------------------------------------------------------


def test_a_new_send_follows_the_last_one_in_the_organizations_zone(marketer, org):
    org.default_time_zone = "America/Sao_Paulo"
    org.save()
    campaign = CampaignFactory(organization=org)
    for position in (0, 4):
        SendFactory(campaign=campaign, position=position)

    page = marketer.get(change_url(campaign))

    empty = page.context["inline_admin_formsets"][0].formset.empty_form
    assert empty.initial["position"] == 5
    assert empty.initial["time_zone"] == "America/Sao_Paulo"
    html = page.content.decode()
    assert 'list="id_sends-__prefix__-time_zone-zones"' in html
    assert '<option value="America/Sao_Paulo">' in html


def test_on_a_new_campaign_a_send_starts_in_the_zone_of_the_staff_members_organization(
    marketer, org
):
    WhatsAppNumberFactory(organization=org, display_phone_number="+55 11 98888 7777")

    page = marketer.get(ADD_URL)

    empty = page.context["inline_admin_formsets"][0].formset.empty_form
    assert (empty.initial["position"], empty.initial["time_zone"]) == (0, "America/Sao_Paulo")


@pytest.mark.parametrize(
    ("display_phone_number", "zone"),
    [
        ("+55 11 98888 7777", "America/Sao_Paulo"),
        ("+44 7911 123456", "Europe/London"),  # four zones share +44 7: the country's
        ("+1 415 555 0100", "America/Los_Angeles"),
        ("+1 555 010 0001", "America/New_York"),  # no area of its own: the country's
        ("not a number", "UTC"),
    ],
)
def test_without_a_default_the_zone_is_the_first_numbers_countrys(display_phone_number, zone):
    organization = OrganizationFactory()
    WhatsAppNumberFactory(organization=organization, display_phone_number=display_phone_number)
    WhatsAppNumberFactory(organization=organization, display_phone_number="+49 30 123456")

    assert organization_time_zone(organization) == zone


def test_an_organization_without_numbers_or_default_starts_sends_in_utc():
    assert organization_time_zone(OrganizationFactory()) == "UTC"


def test_the_organizations_default_zone_must_be_a_known_zone(client):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "pw"))
    organization = OrganizationFactory()
    url = reverse("admin:setter_organization_change", args=[organization.pk])
    # The organization as its change form shows it (every setting at its default).
    data = {
        key: "" if value is None else value
        for key, value in model_to_dict(organization).items()
        if key != "id"
    }
    data |= {"memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"}

    refused = client.post(url, {**data, "default_time_zone": "Mars/Base"})
    accepted = client.post(url, {**data, "default_time_zone": "Asia/Kolkata"})

    assert "is not an IANA time zone" in refused.content.decode()
    assert accepted.status_code == 302
    organization.refresh_from_db()
    assert organization.default_time_zone == "Asia/Kolkata"
