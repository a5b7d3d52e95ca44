"""Sends and campaign settings change only while the campaign is a draft; a saved send
carries the UTC instant of its local time."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from campaigns.models import Campaign, Send
from campaigns.services import (
    CampaignNotEditable,
    delete_send,
    save_campaign,
    save_send,
    validate_send,
)
from tests.campaigns.editor import ready_campaign, refreshed
from tests.factories import (
    AudienceFactory,
    CampaignFactory,
    MessageTemplateFactory,
    OrganizationFactory,
    SendFactory,
    WhatsAppNumberFactory,
)

pytestmark = pytest.mark.django_db

NOT_DRAFT = [s for s in Campaign.Status.values if s != Campaign.Status.DRAFT]


def new_send(campaign, **fields):
    template = MessageTemplateFactory(organization=campaign.organization)
    values = {
        "campaign": campaign,
        "local_date": dt.date(2030, 11, 3),
        "local_time": dt.time(1, 30),
        "time_zone": "America/New_York",
        "template": template,
        "parameter_mapping": ["first_name", '"SPRING10"'],
    }
    return Send(**{**values, **fields})


def test_save_send_stores_the_utc_instant_of_the_local_time():
    campaign = CampaignFactory()
    send = new_send(campaign, local_date=dt.date(2030, 7, 1), local_time=dt.time(9, 0))

    resolved = save_send(send)

    send.refresh_from_db()
    assert send.scheduled_for == dt.datetime(2030, 7, 1, 13, 0, tzinfo=dt.UTC)
    assert resolved.ambiguous is False


def test_save_send_reports_an_ambiguous_time_resolved_to_its_first_occurrence():
    campaign = CampaignFactory()
    send = new_send(campaign)  # 2030-11-03 01:30 New York happens twice

    resolved = save_send(send)

    assert send.scheduled_for == dt.datetime(2030, 11, 3, 5, 30, tzinfo=dt.UTC)
    assert resolved.ambiguous is True
    assert "happens twice in America/New_York" in resolved.note


def test_changing_the_local_time_recomputes_the_instant():
    campaign = ready_campaign(sends=1)
    send = campaign.sends.get()
    send.local_date, send.local_time, send.time_zone = (
        dt.date(2030, 1, 2),
        dt.time(10),
        "Asia/Kolkata",
    )

    save_send(send)

    assert Send.objects.get(pk=send.pk).scheduled_for == dt.datetime(
        2030, 1, 2, 4, 30, tzinfo=dt.UTC
    )


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"local_date": dt.date(2030, 3, 10), "local_time": dt.time(2, 30)},
            "local_time",
            "02:30 on 2030-03-10 does not exist in America/New_York: "
            "clocks jump from 02:00 to 03:00",
        ),
        ({"time_zone": "Moon/Tranquility"}, "time_zone", "Unknown time zone 'Moon/Tranquility'"),
        (
            {"parameter_mapping": ["first_name"]},
            "parameter_mapping",
            "The template has 2 parameter(s) but the mapping gives 1.",
        ),
        (
            {"parameter_mapping": ["first_name", "favourite_colour"]},
            "parameter_mapping",
            "'favourite_colour' is not a lead field",
        ),
        ({"parameter_mapping": {"1": "first_name"}}, "parameter_mapping", "must be a list"),
        (
            {"event_filter_mode": Send.EventFilterMode.EXCLUDE},
            "event_filter_type",
            "Name the event type",
        ),
        (
            {"event_filter_type": "purchase", "event_filter_within_minutes": 60},
            "event_filter_mode",
            "Pick include or exclude",
        ),
    ],
)
def test_an_invalid_send_is_refused_field_by_field_and_not_saved(fields, field, message):
    campaign = CampaignFactory()
    send = new_send(campaign, **fields)

    with pytest.raises(ValidationError) as raised:
        save_send(send)

    assert any(message in text for text in raised.value.message_dict[field])
    assert not Send.objects.filter(campaign=campaign).exists()


def test_a_template_of_another_organization_is_refused():
    campaign = CampaignFactory()
    send = new_send(campaign, template=MessageTemplateFactory(organization=OrganizationFactory()))

    with pytest.raises(ValidationError) as raised:
        save_send(send)

    assert raised.value.message_dict == {
        "template": ["Pick a template of the campaign's organization."]
    }


def test_validate_send_accepts_a_mapping_of_fields_variables_and_literals():
    campaign = CampaignFactory()
    template = MessageTemplateFactory(
        organization=campaign.organization, body_text="{{1}} {{2}} {{3}} {{4}}"
    )
    send = new_send(
        campaign,
        template=template,
        parameter_mapping=["first_name", "variables.coupon", '"literal"', "phone_e164"],
        event_filter_mode=Send.EventFilterMode.INCLUDE,
        event_filter_type="webinar_attended",
        event_filter_within_minutes=1440,
    )

    assert validate_send(send).ambiguous is True


@pytest.mark.parametrize("status", NOT_DRAFT)
def test_sends_of_a_campaign_that_left_draft_cannot_be_added_changed_or_deleted(status):
    campaign = ready_campaign(sends=1)
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    send = Send.objects.get(campaign=campaign)
    before = (send.local_time, send.scheduled_for)

    send.local_time = dt.time(23, 59)
    with pytest.raises(CampaignNotEditable, match="can only be changed while it is a draft"):
        save_send(send)
    with pytest.raises(CampaignNotEditable):
        save_send(new_send(campaign))
    with pytest.raises(CampaignNotEditable):
        delete_send(send)

    stored = Send.objects.get(campaign=campaign)
    assert (stored.local_time, stored.scheduled_for) == before


def test_a_draft_send_can_be_deleted():
    campaign = ready_campaign(sends=2)
    first = campaign.sends.order_by("position").first()

    delete_send(first)

    assert list(campaign.sends.values_list("position", flat=True)) == [1]


@pytest.mark.parametrize("status", NOT_DRAFT)
def test_campaign_settings_cannot_change_once_it_left_draft(status):
    campaign = CampaignFactory(status=status, name="Before")
    campaign.name = "After"

    with pytest.raises(CampaignNotEditable):
        save_campaign(campaign)

    assert refreshed(campaign).name == "Before"


def test_a_campaign_only_takes_its_own_organizations_number_and_audiences():
    campaign = CampaignFactory(name="Before")
    other = OrganizationFactory()
    campaign.name = "After"
    campaign.whatsapp_number = WhatsAppNumberFactory(organization=other)

    with pytest.raises(ValidationError) as raised:
        save_campaign(campaign, audiences=[AudienceFactory(organization=other, name="Theirs")])

    assert raised.value.message_dict == {
        "whatsapp_number": ["Pick a WhatsApp number of the campaign's organization."],
        "audiences": ["Not audiences of the campaign's organization: Theirs."],
    }
    assert refreshed(campaign).name == "Before"
    assert not refreshed(campaign).audiences.exists()


def test_save_campaign_sets_the_audiences_of_a_draft():
    campaign = CampaignFactory()
    audience = AudienceFactory(organization=campaign.organization)

    save_campaign(campaign, audiences=[audience])

    assert list(refreshed(campaign).audiences.all()) == [audience]


def test_a_factory_send_is_valid_as_built():
    """The shared factory builds sends the editor accepts (other tests rely on it)."""
    send = SendFactory()

    validate_send(send)
