"""The quality guard (issue 16.4): Meta's phone_number_quality_update webhook keeps the number's
messaging limit and quality event current, and a FLAGGED number pauses every active campaign on
it, with the reason shown and a `send.paused` event, until the marketer resumes it."""

import datetime as dt
import hashlib
import hmac
import json
import logging

import pytest
from django.conf import settings
from django.forms.models import model_to_dict
from django.urls import reverse
from django.utils import timezone

from campaigns import dispatcher, services
from campaigns.models import Campaign, Send, SendRecipient
from messaging.models import WhatsAppNumber
from messaging.services import sync_number
from tests.campaigns.conftest import running_send
from tests.factories import (
    CampaignFactory,
    OrganizationFactory,
    SendFactory,
    WhatsAppNumberFactory,
)
from tests.support import META_WEBHOOKS
from webhooks.models import EventType, WebhookDelivery
from webhooks.outbound import services as outbound

FIXTURES = META_WEBHOOKS.parent / "phone_number_quality_update.json"
Tier = WhatsAppNumber.MessagingLimit


def quality_update(variant: str, number: WhatsAppNumber, **value_fields) -> dict:
    """The fixture's payload, about `number` (its WABA as the entry, its display number)."""
    payload = json.loads(FIXTURES.read_text())[variant]
    payload["entry"][0]["id"] = number.waba_id
    value = payload["entry"][0]["changes"][0]["value"]
    value["display_phone_number"] = "".join(c for c in number.display_phone_number if c.isdigit())
    value.update(value_fields)
    return payload


def post(client, payload):
    body = json.dumps(payload).encode()
    digest = hmac.new(settings.WHATSAPP_APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = client.post(
        "/webhooks/whatsapp",
        body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": f"sha256={digest}"},
    )
    assert response.status_code == 200


@pytest.fixture
def flaggable(number):
    """The sandbox's number, written as Meta's Graph API shows it, at the 10K tier."""
    WhatsAppNumber.objects.filter(pk=number.pk).update(
        display_phone_number="+1 555-078-3881", messaging_limit=Tier.TIER_10K
    )
    number.refresh_from_db()
    return number


@pytest.mark.django_db
@pytest.mark.parametrize(
    "variant,event,tier",
    [
        ("flagged", "FLAGGED", Tier.TIER_2K),
        ("downgrade", "DOWNGRADE", Tier.TIER_250),
        ("upgrade_limit_only", "UPGRADE", Tier.TIER_50),
    ],
)
def test_the_webhook_keeps_the_numbers_limit_and_quality_event(
    client, flaggable, variant, event, tier
):
    post(client, quality_update(variant, flaggable))

    flaggable.refresh_from_db()
    assert flaggable.quality_event == event
    assert flaggable.quality_event_at is not None
    assert flaggable.messaging_limit == tier
    assert (
        flaggable.messaging_limit_count == {"TIER_2K": 2000, "TIER_250": 250, "TIER_50": 50}[tier]
    )


@pytest.mark.django_db
def test_an_unknown_tier_or_event_is_refused_loudly_and_changes_nothing(client, flaggable, caplog):
    with caplog.at_level(logging.WARNING):
        post(
            client,
            quality_update("downgrade", flaggable, max_daily_conversations_per_business="TIER_7K"),
        )
        post(client, quality_update("downgrade", flaggable, event="SOMETHING_NEW"))

    flaggable.refresh_from_db()
    assert flaggable.messaging_limit == Tier.TIER_10K
    assert "unknown messaging limit tier 'TIER_7K'" in caplog.text
    assert "unknown phone_number_quality_update event 'SOMETHING_NEW'" in caplog.text


@pytest.mark.django_db
def test_another_wabas_number_with_the_same_display_number_is_untouched(client, flaggable):
    elsewhere = WhatsAppNumberFactory(
        waba_id="999",
        display_phone_number=flaggable.display_phone_number,
        messaging_limit=Tier.TIER_10K,
    )
    campaign = CampaignFactory(
        organization=elsewhere.organization,
        whatsapp_number=elsewhere,
        status=Campaign.Status.SCHEDULED,
    )
    SendFactory(campaign=campaign)

    post(client, quality_update("flagged", flaggable))

    elsewhere.refresh_from_db()
    campaign.refresh_from_db()
    assert (elsewhere.quality_event, elsewhere.messaging_limit) == ("", Tier.TIER_10K)
    assert campaign.status == Campaign.Status.SCHEDULED


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_engine")
def test_a_flagged_number_pauses_its_running_send_until_the_marketer_resumes(
    client, sandbox, flaggable, marketing_template
):
    phones = [f"+4420794602{n:02d}" for n in range(40)]
    send = running_send(flaggable, marketing_template, phones)
    outbound.create_endpoint(flaggable.organization, "https://crm.example.com/setter")
    idle = CampaignFactory(organization=flaggable.organization, status=Campaign.Status.DRAFT)

    post(client, quality_update("flagged", flaggable))

    campaign = Campaign.objects.get(pk=send.campaign_id)
    send.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert "FLAGGED" in send.status_reason and "FLAGGED" in campaign.status_reason
    [event] = WebhookDelivery.objects.filter(event_type=EventType.SEND_PAUSED)
    assert event.payload["send"]["id"] == str(send.pk)
    assert "FLAGGED" in event.payload["reason"]
    idle.refresh_from_db()
    assert idle.status == Campaign.Status.DRAFT

    assert dispatcher.dispatch_send(send.pk) is False
    assert sandbox.requests()["count"] == 0
    assert set(send.recipients.values_list("status", flat=True)) == {SendRecipient.Status.QUEUED}

    services.transition_campaign(campaign, "resume")
    while dispatcher.dispatch_send(send.pk):
        pass

    assert sandbox.requests()["count"] == len(phones)
    assert set(send.recipients.values_list("status", flat=True)) == {SendRecipient.Status.SENT}


@pytest.mark.django_db
def test_an_upgrade_pauses_nothing(client, flaggable):
    campaign = CampaignFactory(
        organization=flaggable.organization,
        whatsapp_number=flaggable,
        status=Campaign.Status.SCHEDULED,
    )
    SendFactory(campaign=campaign)

    post(client, quality_update("upgrade_limit_only", flaggable))

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_engine")
@pytest.mark.parametrize("permanent_ratio,paused", [(0.5, True), (0.05, False)])
def test_a_send_whose_answers_are_mostly_permanent_failures_pauses(
    sandbox, number, marketing_template, permanent_ratio, paused
):
    organization = number.organization
    organization.guard_failure_percent, organization.guard_failure_window = 20, 50
    organization.save()
    sandbox.configure(ratio_permanent=permanent_ratio, ratio_async_failure=0.0, seed=7)
    phones = [f"+4420794603{n:02d}" for n in range(100)] + [
        f"+4420794604{n:02d}" for n in range(100)
    ]
    send = running_send(number, marketing_template, phones)

    while dispatcher.dispatch_send(send.pk):
        pass

    campaign = Campaign.objects.get(pk=send.campaign_id)
    send.refresh_from_db()
    requests = sandbox.requests(limit=1000)["count"]
    if paused:
        assert campaign.status == Campaign.Status.PAUSED
        assert "recipient-permanent failures (over 20%)" in send.status_reason
        assert 50 <= requests < len(phones)
        assert send.recipients.filter(status=SendRecipient.Status.QUEUED).exists()
    else:
        assert campaign.status == Campaign.Status.COMPLETED
        assert requests == len(phones)


def stop_reply(number, sender: str) -> dict:
    """A text message saying STOP from `sender` to `number`, in Meta's webhook shape."""
    payload = json.loads((META_WEBHOOKS / "message.json").read_text())["text"]
    value = payload["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = number.phone_number_id
    message = value["messages"][0]
    message["text"]["body"], message["from"] = "STOP", sender.lstrip("+")
    return payload


@pytest.mark.django_db
@pytest.mark.parametrize("stops,paused", [(5, True), (4, False)])
def test_a_burst_of_stop_replies_to_a_send_pauses_it(client, stops, paused):
    """200 messages sent within the hour, 2% allowed: 5 STOPs pause it, 4 do not; STOPs from
    phones the send did not message never count."""
    number = WhatsAppNumberFactory()
    campaign = CampaignFactory(
        organization=number.organization, whatsapp_number=number, status=Campaign.Status.RUNNING
    )
    send = SendFactory(
        campaign=campaign,
        status=Send.Status.SENDING,
        started_at=timezone.now() - dt.timedelta(minutes=20),
    )
    phones = [f"+4420794605{n:02d}" for n in range(100)] + [
        f"+4420794606{n:02d}" for n in range(100)
    ]
    SendRecipient.objects.bulk_create(
        SendRecipient(send=send, phone_e164=phone, status=SendRecipient.Status.DELIVERED)
        for phone in phones
    )
    outbound.create_endpoint(number.organization, "https://crm.example.com/setter")

    for n in range(6):
        post(client, stop_reply(number, f"+4420794607{n:02d}"))  # never messaged by the send
    for phone in phones[:stops]:
        post(client, stop_reply(number, phone))

    campaign.refresh_from_db()
    send.refresh_from_db()
    if paused:
        assert campaign.status == Campaign.Status.PAUSED
        assert "5 of the 200 recipients messaged so far replied STOP" in send.status_reason
        [event] = WebhookDelivery.objects.filter(event_type=EventType.SEND_PAUSED)
        assert event.payload["reason"].startswith("5 of the 200")
    else:
        assert campaign.status == Campaign.Status.RUNNING
        assert not WebhookDelivery.objects.filter(event_type=EventType.SEND_PAUSED).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field,value",
    [
        ("guard_failure_percent", "0"),
        ("guard_failure_percent", "101"),
        ("guard_failure_window", "5"),
        ("guard_stop_percent", "0"),
        ("guard_stop_percent", "-1"),
    ],
)
def test_the_organization_form_refuses_guard_thresholds_out_of_range(admin_client, field, value):
    organization = OrganizationFactory()
    data = {
        key: "" if value is None else value
        for key, value in model_to_dict(organization).items()
        if key not in ("id",)
    }
    data |= {field: value, "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"}

    response = admin_client.post(
        reverse("admin:setter_organization_change", args=[organization.pk]), data
    )

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors


@pytest.mark.django_db
@pytest.mark.parametrize("rating,paused", [("RED", True), ("YELLOW", False)])
def test_a_sync_that_reads_the_number_red_pauses_its_campaigns(
    sandbox, whatsapp_client, number, rating, paused
):
    campaign = CampaignFactory(
        organization=number.organization, whatsapp_number=number, status=Campaign.Status.SCHEDULED
    )
    send = SendFactory(campaign=campaign)
    sandbox.register_number(number, quality_rating=rating)

    assert "quality_rating" in sync_number(number, whatsapp_client)

    campaign.refresh_from_db()
    send.refresh_from_db()
    if paused:
        assert campaign.status == Campaign.Status.PAUSED
        assert "quality of" in send.status_reason and "as RED" in send.status_reason
        services.transition_campaign(campaign, "resume")
        assert sync_number(number, whatsapp_client) == []  # still RED: no second pause
        campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
