"""The engine with real Celery worker processes on Redis, the sandbox over a socket and our
webhook on a live server: a worker killed mid-send never causes a second message."""

import os
import signal
import subprocess
import sys
import uuid

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from campaigns import dispatcher
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


class Worker:
    """`celery worker` as its own process, on the test database and the test broker."""

    def __init__(self, sandbox_url: str, queue: str):
        db = connection.settings_dict
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_TASK_DEFAULT_QUEUE": queue,
            "RATE_LIMIT_REDIS_URL": settings.RATE_LIMIT_REDIS_URL,
            "WHATSAPP_GRAPH_URL": sandbox_url,
            "DISPATCH_CONCURRENCY": "8",
            "DISPATCH_SLICE_SECONDS": "5",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "setter", "worker", "--pool", "threads",
             "--concurrency", "2", "--queues", queue, "--without-heartbeat", "--without-gossip",
             "--without-mingle", "--loglevel", "WARNING", "--hostname", f"{uuid.uuid4().hex}@test"],
            cwd=settings.BASE_DIR,
            env=env,
            start_new_session=True,
        )  # fmt: skip

    def kill(self):
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def queue():
    """A queue of this test's own, so no stale message of another run reaches its workers
    (they also send their own follow-up tasks there)."""
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
def workers(sandbox, queue):
    started = []

    def start():
        worker = Worker(sandbox.url, queue)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def test_a_worker_killed_mid_send_never_causes_a_second_message(
    sandbox, number, marketing_template, workers, queue, live_server, settings
):
    settings.RECIPIENT_SENDING_STALE_SECONDS = 3
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
    assert dispatcher.start_due_sends() == [send.pk]

    first = workers()
    dispatch_send_task.apply_async([send.pk], queue=queue)
    wait_until(lambda: sandbox.requests()["count"] >= 10, timeout=60)
    first.kill()
    called_before_kill = sandbox.requests()["count"]
    assert called_before_kill < len(phones)

    workers()
    # Beat's job, driven by the test: find the orphaned send and give it dispatchers again.
    wait_until(lambda: dispatcher.stalled_send_ids(), timeout=30)
    for _ in range(2):
        dispatch_send_task.apply_async([send.pk], queue=queue)

    def settled():
        dispatcher.recover_lost_recipients()
        dispatcher.finish_sends()
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
