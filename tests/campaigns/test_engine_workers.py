"""The engine with real Celery worker processes on Redis, the sandbox over a socket and our
webhook on a live server: a worker killed mid-send never causes a second message."""

import pytest
from django.utils import timezone

from campaigns import engine, sends
from campaigns.materializer import materialize_send
from campaigns.models import Campaign, Send, SendRecipient
from campaigns.tasks import dispatch_send_task
from tests.factories import AudienceFactory, CampaignFactory, LeadFactory, SendFactory
from tests.support import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
Status = SendRecipient.Status
TERMINAL = {
    Status.SENT,
    Status.DELIVERED,
    Status.READ,
    Status.FAILED,
    Status.SKIPPED,
    Status.UNKNOWN,
}


def test_a_worker_killed_mid_send_never_causes_a_second_message(
    sandbox, number, marketing_template, workers, queue, live_server, settings
):
    settings.DISPATCH_STALE_SECONDS = 2
    sandbox.configure(
        webhook_url=live_server.url + "/webhooks/whatsapp",
        sent_delay_ms=0,
        delivered_delay_ms=10,
        read_delay_ms=10,
    )
    campaign = CampaignFactory(
        organization=number.organization, whatsapp_number=number, status=Campaign.Status.SCHEDULED
    )
    audience = AudienceFactory(organization=number.organization)
    campaign.audiences.add(audience)
    phones = [f"+4420794{n:05d}" for n in range(100)]
    for phone in phones:
        LeadFactory(
            audience=audience, phone_e164=phone, first_name="Ann", variables={"coupon": "C"}
        )
    send = SendFactory(
        campaign=campaign,
        template=marketing_template,
        scheduled_for=timezone.now(),
        parameter_mapping=["first_name", "variables.coupon"],
        max_messages_per_second=10,  # batches of 20: most recipients are still queued at the kill
    )
    materialize_send(send.pk)
    assert sends.start_due_sends() == [send.pk]

    first = workers()
    dispatch_send_task.apply_async([send.pk], queue=queue)
    wait_until(lambda: sandbox.requests()["count"] >= 10, timeout=60)
    first.kill()
    called_before_kill = sandbox.requests()["count"]
    assert called_before_kill < len(phones)

    workers()

    def settled():
        """Beat's tick, driven by the test: the dead worker's rows are recovered and the send
        gets dispatchers again, unless the fresh worker already runs its continuation."""
        engine.tick(lambda send_id: dispatch_send_task.apply_async([send_id], queue=queue))
        return Send.objects.get(pk=send.pk).status == Send.Status.COMPLETED

    wait_until(settled, timeout=90, interval=0.5)

    stats = sandbox.stats()
    assert stats["duplicate_recipients"] == 0
    recipients = list(SendRecipient.objects.filter(send=send))
    assert {r.status for r in recipients} <= TERMINAL
    accepted = {
        "+" + r["to"].lstrip("+") for r in sandbox.requests(limit=10_000)["requests"] if r["wamid"]
    }
    # Every phone the sandbox accepted is known to have left; the rest were never called.
    wait_until(
        lambda: set(
            SendRecipient.objects.filter(
                send=send, status__in=[Status.SENT, Status.DELIVERED, Status.READ]
            ).values_list("phone_e164", flat=True)
        )
        == accepted,
        timeout=30,
    )
    assert len(accepted) > called_before_kill, "the fresh worker continued the send"
    never_called = set(phones) - accepted
    assert all(r.status == Status.UNKNOWN for r in recipients if r.phone_e164 in never_called), (
        "a recipient lost with its worker is never resent"
    )
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.COMPLETED
