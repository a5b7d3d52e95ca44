"""A campaign run by the engine against the Meta sandbox tells the partner's endpoint that it
started and completed, and that each send started and completed: once each, signed."""

import datetime as dt

import pytest
from django.utils import timezone

from campaigns import dispatcher, sends
from campaigns.materializer import materialize_send
from campaigns.models import Campaign, Send
from tests.factories import AudienceFactory, CampaignFactory, LeadFactory, SendFactory
from tests.support import wait_until
from webhooks.models import EventType, WebhookDelivery
from webhooks.outbound import events, services
from webhooks.outbound.signing import verify

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_engine")]

PHONES = [f"+4420794611{n:02d}" for n in range(4)]


@pytest.fixture
def campaign(sandbox, number, marketing_template):
    """A scheduled campaign with two sends of four leads, a day apart."""
    campaign = CampaignFactory(
        organization=number.organization, whatsapp_number=number, status=Campaign.Status.SCHEDULED
    )
    audience = AudienceFactory(organization=number.organization)
    campaign.audiences.add(audience)
    for i, phone in enumerate(PHONES):
        LeadFactory(audience=audience, phone_e164=phone, first_name=f"Ann{i}")
    for position in range(2):
        SendFactory(
            campaign=campaign,
            position=position,
            template=marketing_template,
            scheduled_for=timezone.now() + dt.timedelta(days=position + 1),
            parameter_mapping=["first_name", '"10%"'],
            max_messages_per_second=100,
        )
    return campaign


def fire(send: Send) -> None:
    """Beat and a worker taking one send from due to done."""
    Send.objects.filter(pk=send.pk).update(scheduled_for=timezone.now())
    materialize_send(send.pk)
    assert sends.start_due_sends() == [send.pk]
    while dispatcher.dispatch_send(send.pk):
        pass


def event_types(endpoint):
    return list(
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .order_by("created_at", "pk")
        .values_list("event_type", flat=True)
    )


def test_each_state_change_is_one_event_with_the_object_and_its_stats(
    celery_worker, campaign, receiver
):
    endpoint = services.create_endpoint(campaign.organization, receiver.url)
    first, second = campaign.sends.order_by("position")

    fire(first)
    assert event_types(endpoint) == ["campaign.started", "send.started", "send.completed"]
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SCHEDULED
    fire(second)

    assert event_types(endpoint) == [
        "campaign.started",
        "send.started",
        "send.completed",
        "send.started",
        "send.completed",
        "campaign.completed",
    ]
    wait_until(lambda: len(receiver.requests) == 6, timeout=20)
    for headers, body in receiver.requests:
        verify(endpoint.secret, headers, body)
    by_type = {}
    for event in receiver.events():
        by_type.setdefault(event["type"], []).append(event)

    (started,) = by_type["campaign.started"]
    assert started["campaign"]["id"] == campaign.api_id
    assert started["campaign"]["status"] == "in_progress"
    assert started["created_at"].endswith("Z")
    (completed,) = by_type["campaign.completed"]
    assert completed["campaign"]["status"] == "completed"
    assert completed["campaign"]["stats"]["messagesSent"] == 2 * len(PHONES)
    assert completed["campaign"]["stats"]["progress"] == 1.0
    send_done = [event["send"] for event in by_type["send.completed"]]
    assert [s["id"] for s in send_done] == [str(first.pk), str(second.pk)]
    assert all(s["status"] == "completed" and s["stats"]["messagesSent"] == 4 for s in send_done)
    assert {e["campaignId"] for e in by_type["send.started"]} == {campaign.api_id}


def test_resuming_a_paused_campaign_is_no_new_start(campaign):
    send = campaign.sends.order_by("position").first()
    send.status, send.started_at = Send.Status.SENDING, timezone.now()
    campaign.status = Campaign.Status.RUNNING

    assert events.event_type_for(campaign, Campaign.Status.PAUSED) is None
    assert events.event_type_for(campaign, Campaign.Status.RUNNING) is None
    send.save()
    assert events.event_type_for(campaign, Campaign.Status.SCHEDULED) == EventType.CAMPAIGN_STARTED
    assert events.event_type_for(send, Send.Status.MATERIALIZED) == EventType.SEND_STARTED
    send.status = Send.Status.CANCELLED
    assert events.event_type_for(send, Send.Status.SENDING) is None


def test_without_endpoints_nothing_is_recorded(campaign):
    fire(campaign.sends.order_by("position").first())

    assert not WebhookDelivery.objects.exists()


def test_a_campaign_stopped_by_its_stop_at_emits_campaign_stopped(campaign, receiver):
    endpoint = services.create_endpoint(campaign.organization, receiver.url)
    first = campaign.sends.order_by("position").first()
    Campaign.objects.filter(pk=campaign.pk).update(stop_at=timezone.now() + dt.timedelta(hours=1))
    Send.objects.filter(pk=first.pk).update(scheduled_for=timezone.now())
    materialize_send(first.pk)
    assert sends.start_due_sends() == [first.pk]
    Campaign.objects.filter(pk=campaign.pk).update(stop_at=timezone.now())

    dispatcher.dispatch_send(first.pk)

    assert event_types(endpoint) == ["campaign.started", "send.started", "campaign.stopped"]
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.STOPPED
