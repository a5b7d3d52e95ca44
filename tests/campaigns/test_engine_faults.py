"""The send engine under Meta's faults (issue 10, "How it is checked"): PostgreSQL, Redis, real
worker processes, the sandbox over a socket answering like Meta on a busy day, beat's tick
driven by the test. Every recipient gets exactly one message or a reason, on time, at the rate.

What must hold is computed here, independently of the product: the audience is a CSV of
phones this module wrote (valid, opted out, US, invalid), so the expected recipients are known
before the product reads it; what was messaged is what the sandbox answered 200.
"""

import datetime as dt
import random
from collections import Counter

import pytest
from django.utils import timezone

from audiences import services as audience_services
from audiences.models import OptOut
from campaigns import engine, services
from campaigns.materializer import materialize_send
from campaigns.models import Campaign, Send, SendRecipient
from campaigns.selectors import send_progress
from campaigns.tasks import dispatch_send_task
from messaging.sandbox.stats import max_in_any_window
from tests.audiences.helpers import csv_bytes, upload
from tests.factories import CampaignFactory, SendFactory
from tests.support import SandboxProcess, reset_sandbox, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def sandbox_process(django_db_setup):
    """The rate is judged at the receiver: a sandbox of its own, as the benchmark runs it."""
    server = SandboxProcess()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_process, settings):
    yield from reset_sandbox(sandbox_process.url, settings)


Status = SendRecipient.Status
MESSAGED = {Status.SENT, Status.DELIVERED, Status.READ}
TERMINAL = MESSAGED | {Status.FAILED, Status.SKIPPED, Status.UNKNOWN}
IN_PROGRESS = {Status.QUEUED, Status.CLAIMED, Status.SENDING}
# Meta on a busy day: 15% 429 (130429), 10% HTTP 500 (131000), 3% of answers 1–3 s late.
FAULTS = {
    "ratio_429": 0.15,
    "ratio_5xx": 0.10,
    "ratio_slow": 0.03,
    "slow_ms_min": 1000,
    "slow_ms_max": 3000,
    "ratio_async_failure": 0.0,
    "read_ratio": 0.0,
    "seed": 10,
}
# Enough requests in flight for 300 msg/s when 3% of answers take 1–3 s (Little's law: ~20).
WORKER_CONCURRENCY = 32


class WrittenAudience:
    """A CSV audience and the phones each part of it has, as written (E.164)."""

    def __init__(self, organization, ok: int, opted_out: int, us: int, invalid: int):
        valid = [f"+55119{70_000_000 + n}" for n in range(ok)]
        self.opted_out = set(valid[:: max(1, ok // opted_out)][:opted_out]) if opted_out else set()
        self.us = {f"+1202555{1000 + n:04d}" for n in range(us)}
        self.invalid = [f"12345{n}" for n in range(invalid)]
        self.expected = set(valid) - self.opted_out
        self.forbidden = self.opted_out | self.us
        rows = [(f"v-{n}", phone, "Ann") for n, phone in enumerate(valid)]
        rows += [(f"us-{n}", phone, "Bob") for n, phone in enumerate(sorted(self.us))]
        rows += [(f"x-{n}", phone, "Cy") for n, phone in enumerate(self.invalid)]
        random.Random(10).shuffle(rows)  # forbidden rows spread through the file
        content = csv_bytes(["external_id", "phone", "first_name"], rows)
        self.audience = audience_services.ingest_audience(upload(organization, content).pk)
        OptOut.objects.bulk_create(
            [OptOut(organization=organization, phone_e164=phone) for phone in self.opted_out]
        )


def fault_campaign(number, template, *, rate: int, ok: int, opted_out=0, us=0, invalid=0):
    """A scheduled MARKETING campaign of one materialized send, due in a minute (the test moves
    the fire time once its workers are up)."""
    number.throughput_mps = 1000  # the send's own rate is what is checked, not a cap of 80
    number.save(update_fields=["throughput_mps"])
    campaign = CampaignFactory(
        organization=number.organization, whatsapp_number=number, status=Campaign.Status.SCHEDULED
    )
    audience = WrittenAudience(
        number.organization, ok=ok, opted_out=opted_out, us=us, invalid=invalid
    )
    campaign.audiences.add(audience.audience)
    send = SendFactory(
        campaign=campaign,
        template=template,
        scheduled_for=timezone.now() + dt.timedelta(minutes=1),
        parameter_mapping=["first_name", '"10%"'],
        max_messages_per_second=rate,
    )
    materialize_send(send.pk)
    assert send.recipients.count() == len(audience.expected)
    return campaign, send, audience


class Beat:
    """Beat's engine tick, driven by the test against its own queue."""

    def __init__(self, queue):
        self.queue = queue

    def tick(self):
        engine.tick(lambda send_id: dispatch_send_task.apply_async([send_id], queue=self.queue))


def fire_now(send, workers_started):
    """Once the workers consume the queue, the send is due: returns its fire time."""
    for worker in workers_started:
        wait_until(worker.ready, timeout=60, interval=0.2)
    fire_at = timezone.now()
    Send.objects.filter(pk=send.pk).update(scheduled_for=fire_at)
    return fire_at


def settle(beat, send, timeout: float) -> None:
    """Beat ticks until no recipient is queued, claimed or sending; fails naming what is left."""

    def settled():
        beat.tick()
        return all_terminal(send)

    wait_until(settled, timeout=timeout, interval=0.25, describe=lambda: dict(statuses(send)))


def progress_of(sandbox, send):
    """For a failed wait: how far the send got, at the sandbox and in the database."""
    return lambda: {"sandbox_accepted": sandbox.stats()["accepted"], **statuses(send)}


def statuses(send) -> Counter:
    return Counter(send.recipients.values_list("status", flat=True))


def all_terminal(send) -> bool:
    return not send.recipients.filter(status__in=IN_PROGRESS).exists()


def answered(records, status: int = 200) -> Counter:
    """How many times each phone (E.164) was answered `status`."""
    return Counter("+" + r["to"] for r in records if r["http_status"] == status)


def requested_phones(records) -> set:
    return {"+" + r["to"] for r in records}


def test_faults_and_a_killed_worker_leave_every_recipient_messaged_once_or_explained(
    sandbox, number, marketing_template, workers, queue, live_server, settings
):
    """3,000 recipients at 300 msg/s, the fault mix, a worker SIGKILLed a third of the way in
    and replaced: done within a bound, exactly once, nobody forbidden, at the rate."""
    rate = 300
    settings.DISPATCH_STALE_SECONDS = 2  # today's engine re-dispatches a dead worker's send
    sandbox.configure(
        **FAULTS,
        webhook_url=live_server.url + "/webhooks/whatsapp",
        sent_delay_ms=0,
        delivered_delay_ms=20,
    )
    campaign, send, audience = fault_campaign(
        number, marketing_template, rate=rate, ok=3_060, opted_out=60, us=40, invalid=20
    )
    expected = audience.expected
    beat = Beat(queue)
    pair = [workers(dispatch_concurrency=WORKER_CONCURRENCY) for _ in range(2)]
    fire_at = fire_now(send, pair)

    def a_third_accepted():
        beat.tick()
        return sandbox.stats()["accepted"] >= len(expected) // 3

    wait_until(a_third_accepted, timeout=30, interval=0.5, describe=progress_of(sandbox, send))
    killed = pair[0]
    killed.kill()
    workers(dispatch_concurrency=WORKER_CONCURRENCY)

    # Ideal: every recipient once plus ~1/3 more for retries at the rate; then a margin.
    bound = len(expected) / rate / (1 - FAULTS["ratio_429"] - FAULTS["ratio_5xx"]) + 25

    settle(beat, send, timeout=bound - (timezone.now() - fire_at).total_seconds())

    records = sandbox.requests(limit=100_000)["requests"]
    accepted = answered(records)
    assert not requested_phones(records) & audience.forbidden, "a forbidden phone was requested"
    assert requested_phones(records) <= expected
    assert [phone for phone, n in accepted.items() if n > 1] == [], "a phone was messaged twice"
    assert sandbox.stats()["duplicate_recipients"] == 0
    counts = statuses(send)
    assert counts[Status.UNKNOWN] <= killed.dispatch_concurrency, counts
    assert max_in_any_window(r["at"] for r in records) <= rate * 1.05

    # Status webhooks settle what was accepted (also rows left unknown by the kill).
    rows = send.recipients

    def messaged_phones():
        beat.tick()
        return set(rows.filter(status__in=MESSAGED).values_list("phone_e164", flat=True))

    wait_until(lambda: messaged_phones() == set(accepted), timeout=30, interval=0.5)
    explained = set(
        rows.filter(status__in=[Status.FAILED, Status.UNKNOWN]).values_list("phone_e164", flat=True)
    )
    assert set(accepted) == expected - explained
    assert set(accepted) | explained == expected
    counts = send_progress(send).counts
    assert counts[Status.SENT] + counts[Status.DELIVERED] + counts[Status.READ] == len(accepted)
    assert counts[Status.FAILED] + counts[Status.UNKNOWN] == len(expected) - len(accepted)
    assert counts[Status.SKIPPED] == 0
    last_answer = {"+" + r["to"]: r["error_code"] for r in sorted(records, key=lambda r: r["at"])}
    for phone, code in rows.filter(status=Status.FAILED).values_list("phone_e164", "error_code"):
        assert code == str(last_answer[phone]), "a failed recipient carries Meta's last code"


@pytest.mark.parametrize(
    ("action", "campaign_status", "reason"),
    [
        ("stop", Campaign.Status.STOPPED, SendRecipient.SkipReason.STOPPED),
        ("cancel", Campaign.Status.CANCELLED, SendRecipient.SkipReason.CANCELLED),
    ],
)
def test_a_stop_mid_send_settles_every_row_within_seconds(
    action, campaign_status, reason, sandbox, number, marketing_template, workers, queue
):
    rate = 100
    sandbox.configure(**FAULTS)
    campaign, send, audience = fault_campaign(number, marketing_template, rate=rate, ok=1_500)
    beat = Beat(queue)
    fire_now(send, [workers(dispatch_concurrency=WORKER_CONCURRENCY) for _ in range(2)])

    def a_quarter_accepted():
        beat.tick()
        return sandbox.stats()["accepted"] >= 1_500 // 4

    wait_until(a_quarter_accepted, timeout=30, interval=0.5, describe=progress_of(sandbox, send))
    services.transition_campaign(campaign, action)
    stopped = timezone.now()

    settle(beat, send, timeout=5)
    campaign.refresh_from_db()
    assert campaign.status == campaign_status
    # Beat goes on beating for a few seconds: nothing more may leave, nothing may change.
    watched_until = stopped + dt.timedelta(seconds=3)
    wait_until(lambda: beat.tick() or timezone.now() >= watched_until, timeout=10, interval=0.25)
    records = sandbox.requests(limit=100_000)["requests"]
    accepted = answered(records)
    rows = {r.phone_e164: r for r in send.recipients.all()}
    assert not [phone for phone, n in accepted.items() if n > 1]
    assert {p for p, r in rows.items() if r.status in MESSAGED} == set(accepted)
    unsent = [r for p, r in rows.items() if p not in accepted and r.status != Status.FAILED]
    assert unsent, "the stop came mid-send"
    assert {(r.status, r.skip_reason) for r in unsent} == {(Status.SKIPPED, reason)}
    # Requests already waiting for their slot may still leave until the dispatchers see the
    # stop (they look every ~0.5 s); none after that.
    late = [r for r in records if r["received_at"] > stopped.timestamp() + 1.5]
    assert late == [], f"{len(late)} requests arrived more than 1.5 s after the {action}"


def test_a_429_storm_does_not_stall_the_send(
    sandbox, number, marketing_template, workers, queue, settings
):
    """60% 429s for a few seconds: the send slows down, then finishes near its ideal time
    (today each 429 pushes the number's next slot a further second: minutes of nothing)."""
    rate, total, storm_seconds = 150, 1_500, 4
    sandbox.configure(**FAULTS)
    campaign, send, audience = fault_campaign(number, marketing_template, rate=rate, ok=total)
    beat = Beat(queue)
    fire_at = fire_now(send, [workers(dispatch_concurrency=WORKER_CONCURRENCY) for _ in range(2)])

    def first_accepted():
        beat.tick()
        return sandbox.stats()["accepted"] >= 200

    wait_until(first_accepted, timeout=30, interval=0.25, describe=progress_of(sandbox, send))
    sandbox.configure(ratio_429=0.6, ratio_5xx=0.0)
    storm_ends = timezone.now() + dt.timedelta(seconds=storm_seconds)
    wait_until(lambda: beat.tick() or timezone.now() >= storm_ends, timeout=10, interval=0.25)
    sandbox.configure(ratio_429=FAULTS["ratio_429"], ratio_5xx=FAULTS["ratio_5xx"])

    bound = total / rate / (1 - FAULTS["ratio_429"] - FAULTS["ratio_5xx"]) + storm_seconds + 20

    settle(beat, send, timeout=bound - (timezone.now() - fire_at).total_seconds())
    records = sandbox.requests(limit=100_000)["requests"]
    accepted = answered(records)
    assert not [phone for phone, n in accepted.items() if n > 1]
    assert max_in_any_window(r["at"] for r in records) <= rate * 1.05
    counts = statuses(send)
    assert counts[Status.SENT] == len(accepted) >= total * 0.99, counts
    assert counts[Status.SENT] + counts[Status.FAILED] == total
