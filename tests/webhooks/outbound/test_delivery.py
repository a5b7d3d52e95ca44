"""Outbound events reach a real HTTP receiver signed, are retried from the database on failure,
and every attempt is recorded."""

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from webhooks.models import EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.outbound import delivery, services
from webhooks.outbound.signing import verify

from .conftest import PartnerReceiver

pytestmark = pytest.mark.django_db(transaction=True)
Status = WebhookDelivery.Status
PAYLOAD = {"type": "campaign.started", "campaign": {"id": "spring", "status": "in_progress"}}


def emit(organization, event_type=EventType.CAMPAIGN_STARTED, payload=PAYLOAD):
    with transaction.atomic():
        return services.emit_event(organization, event_type, payload)


def first_try(ids, now=None):
    """The commit hook claimed the new deliveries and queued a task each: play the worker."""
    return [delivery.attempt(pk, now=now or timezone.now()) for pk in ids]


def run_beat_tick(now):
    """What beat's webhook tick and the workers do, at a chosen instant."""
    return first_try(delivery.claim_due(now=now), now)


def test_an_event_arrives_signed_through_a_celery_worker(
    celery_worker, organization, endpoint, receiver
):
    from tests.support import wait_until

    (delivery_id,) = emit(organization)

    wait_until(lambda: receiver.requests, timeout=15)
    headers, body = receiver.requests[0]
    assert receiver.events() == [PAYLOAD]
    verify(endpoint.secret, headers, body)
    sent = WebhookDelivery.objects.get(pk=delivery_id)
    assert headers["webhook-id"] == sent.event_id and sent.event_id.startswith("msg_")
    assert headers["content-type"] == "application/json"
    wait_until(lambda: WebhookDelivery.objects.get(pk=delivery_id).status == Status.SUCCEEDED)


def test_an_event_exists_only_if_its_transaction_commits(organization, endpoint):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.emit_event(organization, EventType.CAMPAIGN_STARTED, PAYLOAD)
        raise RuntimeError("the state change failed")

    assert not WebhookDelivery.objects.exists()


def test_one_event_fans_out_to_subscribed_active_endpoints_with_one_id(organization, receiver):
    everything = services.create_endpoint(organization, receiver.url)
    sends_only = services.create_endpoint(
        organization, receiver.url, event_types=[EventType.SEND_COMPLETED]
    )
    campaigns_only = services.create_endpoint(
        organization, receiver.url, event_types=[EventType.CAMPAIGN_STARTED]
    )
    paused = services.create_endpoint(organization, receiver.url)
    WebhookEndpoint.objects.filter(pk=paused.pk).update(is_active=False)

    ids = emit(organization)

    deliveries = WebhookDelivery.objects.filter(pk__in=ids)
    assert {d.endpoint_id for d in deliveries} == {everything.pk, campaigns_only.pk}
    assert len({d.event_id for d in deliveries}) == 1
    assert not WebhookDelivery.objects.filter(endpoint=sends_only).exists()


def test_a_failing_receiver_is_retried_on_schedule_until_it_answers(
    fast_retries, organization, endpoint, receiver
):
    receiver.answer(500, 503)
    (delivery_id,) = emit(organization)
    start = timezone.now()

    assert first_try([delivery_id], start) == [Status.PENDING]
    first = WebhookDelivery.objects.get(pk=delivery_id)
    assert first.attempt_count == 1 and first.last_status_code == 500
    assert dt.timedelta(seconds=5) <= first.next_attempt_at - start <= dt.timedelta(seconds=5.5)

    assert run_beat_tick(start + dt.timedelta(seconds=4)) == []  # not due yet
    assert run_beat_tick(start + dt.timedelta(seconds=6)) == [Status.PENDING]
    later = start + dt.timedelta(seconds=6 + 331)
    assert run_beat_tick(later) == [Status.SUCCEEDED]

    done = WebhookDelivery.objects.get(pk=delivery_id)
    assert (done.attempt_count, done.last_status_code, done.finished_at) == (3, 200, later)
    attempts = list(done.attempts.values_list("status_code", "response_body"))
    assert attempts == [(500, "receiver is down"), (503, "receiver is down"), (200, '{"ok": true}')]
    # Each try is signed afresh with its own timestamp, and the same webhook-id.
    assert len({h["webhook-id"] for h, _ in receiver.requests}) == 1
    for (headers, body), moment in zip(
        receiver.requests, [start, start + dt.timedelta(seconds=6), later], strict=True
    ):
        verify(endpoint.secret, headers, body, now=moment)


def test_a_delivery_fails_when_the_schedule_runs_out(
    fast_retries, organization, endpoint, receiver
):
    receiver.answer(500, 500, 500, 500)
    (delivery_id,) = emit(organization)
    now = timezone.now()
    first_try([delivery_id], now)
    for _ in range(2):
        now += dt.timedelta(hours=1)
        run_beat_tick(now)

    failed = WebhookDelivery.objects.get(pk=delivery_id)
    assert (failed.status, failed.attempt_count, failed.next_attempt_at) == (Status.FAILED, 3, None)
    assert run_beat_tick(now) == []


def test_an_unreachable_receiver_is_an_attempt_with_its_error(fast_retries, organization):
    closed = PartnerReceiver()
    closed.close()
    services.create_endpoint(organization, closed.url)
    (delivery_id,) = emit(organization)

    first_try([delivery_id])

    (attempt,) = WebhookAttempt.objects.filter(delivery_id=delivery_id)
    assert attempt.status_code is None and "ConnectionError" in attempt.error
    assert WebhookDelivery.objects.get(pk=delivery_id).status == Status.PENDING


def test_redirects_are_failures_not_followed(fast_retries, organization, endpoint, receiver):
    receiver.answer(301)
    (delivery_id,) = emit(organization)

    first_try([delivery_id])

    assert len(receiver.requests) == 1
    assert WebhookDelivery.objects.get(pk=delivery_id).last_error == "HTTP 301"


def test_410_gone_disables_the_endpoint(organization, endpoint, receiver):
    receiver.answer(410)
    (delivery_id,) = emit(organization)

    assert first_try([delivery_id]) == [Status.FAILED]

    endpoint.refresh_from_db()
    assert not endpoint.is_active and "410" in endpoint.disabled_reason
    assert emit(organization) == []


def test_a_delivery_whose_worker_died_is_claimed_again_after_its_lease(organization, endpoint):
    now = timezone.now()
    (delivery_id,) = emit(organization)  # claimed at commit, and its worker never reports
    assert WebhookDelivery.objects.get(pk=delivery_id).status == Status.DELIVERING

    assert delivery.claim_due(now=now + dt.timedelta(seconds=10)) == []
    assert delivery.claim_due(now=now + dt.timedelta(minutes=5)) == [delivery_id]


def test_resend_queues_the_same_event_again_from_the_start(
    fast_retries, organization, endpoint, receiver
):
    (delivery_id,) = emit(organization)
    first_try([delivery_id])
    sent = WebhookDelivery.objects.get(pk=delivery_id)
    assert sent.status == Status.SUCCEEDED

    assert services.resend(sent) is True
    assert (sent.attempt_count, sent.finished_at) == (0, None)
    assert sent.status == Status.DELIVERING  # claimed again by the commit hook
    first_try([delivery_id])

    assert [h["webhook-id"] for h, _ in receiver.requests] == [sent.event_id] * 2
    assert sent.attempts.count() == 2
    assert WebhookDelivery.objects.get(pk=delivery_id).status == Status.SUCCEEDED


def test_a_delivery_in_flight_is_not_resent(organization, endpoint):
    (delivery_id,) = emit(organization)  # claimed at commit: a worker has it

    assert services.resend(WebhookDelivery.objects.get(pk=delivery_id)) is False
