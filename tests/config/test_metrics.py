"""/metrics after a real send through the Meta sandbox: messages by category and error code,
materialization and dispatch durations, rate-limiter waits, and the broker's queue depth."""

import datetime as dt

import pytest
from django.utils import timezone

from campaigns import dispatcher, sends
from campaigns.materializer import materialize_send
from campaigns.models import Campaign, Send
from campaigns.tasks import dispatch_send_task
from config.celery import app as celery_app
from tests.factories import AudienceFactory, CampaignFactory, LeadFactory, SendFactory

pytestmark = pytest.mark.django_db(transaction=True)

UK_PHONES = [f"+4420794611{n:02d}" for n in range(4)]
US_PHONE = "+12125550142"  # Meta refuses marketing to US numbers: error 131049


def scrape(client) -> dict[str, float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for line in response.content.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def fire_marketing_send(number, template, *, rate):
    """A send to four UK leads and one US lead (which ingest let through), delivered by the
    dispatcher in this process against the sandbox."""
    campaign = CampaignFactory(
        organization=number.organization, whatsapp_number=number, status=Campaign.Status.SCHEDULED
    )
    audience = AudienceFactory(organization=number.organization)
    campaign.audiences.add(audience)
    for phone in [*UK_PHONES, US_PHONE]:
        LeadFactory(
            audience=audience, phone_e164=phone, first_name="Ann", variables={"coupon": "C1"}
        )
    send = SendFactory(
        campaign=campaign,
        template=template,
        scheduled_for=timezone.now() + dt.timedelta(seconds=30),
        parameter_mapping=["first_name", "variables.coupon"],
        max_messages_per_second=rate,
    )
    materialize_send(send.pk)
    Send.objects.filter(pk=send.pk).update(scheduled_for=timezone.now())
    assert sends.start_due_sends() == [send.pk]
    assert dispatcher.dispatch_send(send.pk) is False
    return Send.objects.get(pk=send.pk)


def test_metrics_after_a_rate_limited_send_through_the_sandbox(
    client, sandbox, number, marketing_template, fast_engine, settings
):
    before = scrape(client)  # the rate limiter's Redis counters outlive each test

    send = fire_marketing_send(number, marketing_template, rate=5)

    assert send.status == Send.Status.COMPLETED
    assert sandbox.requests()["count"] == 5
    after = scrape(client)
    assert after['setter_messages_sent_total{category="MARKETING"}'] == 4
    assert after['setter_messages_failed_total{category="MARKETING",error_code="131049"}'] == 1
    assert after["setter_send_materialization_seconds_count"] == 1
    assert 0 < after["setter_send_materialization_seconds_sum"] < 5
    assert after["setter_send_dispatch_seconds_count"] == 1
    # Five messages at 5/s leave 0.2 s apart: the last one's slot is 0.8 s after the first.
    assert 0.7 <= after["setter_send_dispatch_seconds_sum"] < 10

    def delta(sample):
        return after.get(sample, 0.0) - before.get(sample, 0.0)

    # Five messages at 5/s: the dispatcher waited four times with rows in hand, held back by
    # the send's own rate (the number allows 80/s). Each wait is at least the 0.2 s between
    # slots but the tick in which it noticed the next slot was not free yet; a busy machine
    # can stretch a wait, but never beyond the dispatch that contains it.
    assert delta('setter_rate_limiter_waits_total{scope="send"}') == 4
    waited = delta('setter_rate_limiter_wait_seconds_total{scope="send"}')
    assert 4 * (0.2 - 2 * settings.DISPATCH_TICK_SECONDS) <= waited
    assert waited < after["setter_send_dispatch_seconds_sum"]
    assert delta('setter_rate_limiter_waits_total{scope="number"}') == 0


def test_queue_depth_counts_the_messages_no_worker_took_yet(client):
    celery_app.control.purge()
    try:
        for _ in range(3):
            dispatch_send_task.delay(0)

        samples = scrape(client)
    finally:
        celery_app.control.purge()

    assert samples['setter_broker_queue_depth{queue="celery"}'] == 3


def test_a_broker_that_is_down_leaves_only_the_queue_depth_out(client, sandbox, caplog):
    real_url = celery_app.conf.broker_write_url
    celery_app.conf.broker_write_url = "redis://127.0.0.1:1/0"
    try:
        samples = scrape(client)
    finally:
        celery_app.conf.broker_write_url = real_url

    assert not any(name.startswith("setter_broker_queue_depth") for name in samples)
    assert "setter_recipients_queued" in samples
    assert "metrics: broker unavailable" in caplog.text
