"""Send-engine benchmark on PostgreSQL + Redis with the Meta sandbox on this machine.

    .venv/bin/python bench/engine.py [--leads 100000] [--recipients 60000] [--rate-seconds 60]
                                     [--only materialize|throughput|rate]

* materialize: --leads audience leads, 10% opted out, an include filter of 60% of them (half
  by externalId, half by phone) and an exclude event filter over 2x leads events.
  Target ≤ 1.5 s.
* throughput: --recipients recipients from fire time to the last `sent`, the send's limit
  raised out of the way, two worker processes; once with the sandbox answering at once and
  once after 150 ms. Target ≤ 60 s (≥ 1,000 messages/s) each.
* rate: a send limited to 20 messages/s over --rate-seconds with three worker processes.
  Target: within ±5% of 20/s, never more than 21 in any one-second window.

Workers are real `celery worker` processes on Redis (BENCH_REDIS_URL, default db 13); this
script plays beat's engine tick. Prints one JSON object on its last line.
"""

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import (  # noqa: E402
    ROOT,
    bench_organization,
    free_port,
    setup_django,
    start_sandbox,
    stop,
)

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


def copy_rows(table, columns, rows):
    from django.db import connection

    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def campaign_with_leads(label, phones, fire_at, **send_fields):
    """A scheduled campaign of one send to `phones` (all ok, GB, with a first name)."""
    from audiences.models import Audience, Lead
    from campaigns.models import Campaign, Send
    from messaging.models import WhatsAppNumber

    org, number, template = bench_organization(
        label, messaging_limit=WhatsAppNumber.MessagingLimit.TIER_UNLIMITED, throughput_mps=100_000
    )
    audience = Audience.objects.create(organization=org, name=label, status="ready")
    copy_rows(
        Lead._meta.db_table,
        ["audience_id", "organization_id", "row_number", "external_id", "phone_raw",
         "phone_e164", "region", "first_name", "last_name", "email", "variables",
         "ingest_status", "reject_reason", "limited_reporting"],
        (
            (audience.pk, org.pk, i + 1, f"ext-{i}", phone, phone, "GB", "Ann", "", "", "{}",
             "ok", "", True)
            for i, phone in enumerate(phones)
        ),
    )  # fmt: skip
    campaign = Campaign.objects.create(
        organization=org,
        name=label,
        whatsapp_number=number,
        status=Campaign.Status.SCHEDULED,
        product_policy_confirmed=True,
    )
    campaign.audiences.add(audience)
    send = Send.objects.create(
        campaign=campaign,
        local_date=fire_at.date(),
        local_time=fire_at.time(),
        time_zone="UTC",
        scheduled_for=fire_at,
        template=template,
        parameter_mapping=["first_name"],
        **send_fields,
    )
    return org, number, audience, send


def clear_bench_database():
    """Runs that were interrupted leave sending campaigns behind; this tick would resume them."""
    from campaigns.models import Campaign
    from setter.models import Organization

    Campaign.objects.all().delete()
    Organization.objects.all().delete()


def cleanup(org, send):
    send.campaign.delete()
    org.delete()


# --- materialization ---------------------------------------------------------------------------


def bench_materialize(leads: int) -> dict:
    from django.db import connection
    from django.utils import timezone

    from audiences.models import LeadEvent, OptOut
    from campaigns.materializer import materialize_send
    from campaigns.models import AudienceFilterEvent, Send

    fire_at = timezone.now() + dt.timedelta(seconds=30)
    phones = [f"+4479{n:08d}" for n in range(leads)]
    org, _, _, send = campaign_with_leads(
        "materialize",
        phones,
        fire_at,
        audience_filter_mode=Send.AudienceFilterMode.WEBHOOK_FILTERED,
        event_filter_mode=Send.EventFilterMode.EXCLUDE,
        event_filter_type="purchase",
    )
    copy_rows(
        OptOut._meta.db_table,
        ["organization_id", "phone_e164", "scope", "source", "note", "created_at"],
        ((org.pk, p, "all", "manual", "", fire_at) for p in phones[::10]),
    )
    event_at = fire_at - dt.timedelta(days=1)
    copy_rows(
        LeadEvent._meta.db_table,
        ["organization_id", "phone_e164", "event_type", "occurred_at", "received_at"],
        (
            (org.pk, f"+4479{n % (leads * 2):08d}", "purchase" if n % 7 == 0 else "viewed",
             event_at - dt.timedelta(seconds=n // (leads * 2)), fire_at)
            for n in range(leads * 2)
        ),
    )  # fmt: skip
    include = int(leads * 0.6)
    AudienceFilterEvent.objects.create(
        send=send,
        organization=org,
        mode="include",
        payload_hash="bench",
        external_ids=[f"ext-{i}" for i in range(0, include, 2)],
        phones_e164=[phones[i] for i in range(1, include, 2)],
        lead_count=include,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    started = time.perf_counter()
    result = materialize_send(send.pk)
    seconds = time.perf_counter() - started
    log(f"materialized {result.recipient_count:,} of {leads:,} leads in {seconds:.3f} s")
    cleanup(org, send)
    return {
        "materialize_leads": leads,
        "materialize_recipients": result.recipient_count,
        "materialize_seconds": round(seconds, 3),
    }


# --- dispatch ----------------------------------------------------------------------------------


class Workers:
    """N `celery worker` processes (one dispatch task each) on a queue of this run's own."""

    def __init__(self, count: int, sandbox_url: str):
        self.queue = os.environ["CELERY_TASK_DEFAULT_QUEUE"]
        env = {
            **os.environ,
            "CELERY_BROKER_URL": REDIS_URL,
            "RATE_LIMIT_REDIS_URL": REDIS_URL,
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            "WHATSAPP_GRAPH_URL": sandbox_url,
            "DISPATCH_CONCURRENCY": os.environ.get("DISPATCH_CONCURRENCY", "200"),
            "LOG_LEVEL": "WARNING",
        }
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "setter", "worker", "--pool", "threads",
                 "--concurrency", "1", "--prefetch-multiplier", "1", "--loglevel", "WARNING",
                 "--hostname", f"{self.queue}-{i}@bench", "--queues", self.queue],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            for i in range(count)
        ]  # fmt: skip
        from setter.celery import app

        deadline = time.monotonic() + 60
        while len(app.control.ping(timeout=0.5) or []) < count:
            if time.monotonic() > deadline:
                raise SystemExit("workers did not start within 60 s")

    def stop(self):
        for process in self.processes:
            stop(process)


def engine_tick(count: int) -> None:
    """What beat's tick does, with `count` dispatch tasks per started send."""
    from campaigns import dispatcher
    from campaigns.tasks import dispatch_send_task

    for send_id in dispatcher.start_due_sends() + dispatcher.stalled_send_ids():
        for _ in range(count):
            dispatch_send_task.delay(send_id)
    dispatcher.recover_lost_recipients()
    dispatcher.finish_sends()


def run_send(label, recipients, rate, workers, latency_ms, measure):
    """Fire one send through real workers; `measure(send, records, stats)` reads the figures
    before the bench's rows are deleted."""
    import requests
    from django.utils import timezone

    from campaigns.materializer import materialize_send
    from campaigns.models import Send

    port = free_port()
    sandbox = start_sandbox(port, latency_ms=latency_ms)
    sandbox_url = f"http://127.0.0.1:{port}"
    pool = None
    fire_at = timezone.now() + dt.timedelta(seconds=15)
    phones = [f"+4479{n:08d}" for n in range(recipients)]
    org, _, _, send = campaign_with_leads(label, phones, fire_at, max_messages_per_second=rate)
    try:
        requests.post(f"{sandbox_url}/_sandbox/reload", timeout=10).raise_for_status()
        materialize_send(send.pk)
        pool = Workers(workers, sandbox_url)
        log(f"{label}: {recipients:,} recipients, {workers} workers, fires at {fire_at:%H:%M:%S}")
        while timezone.now() < fire_at - dt.timedelta(seconds=2):
            time.sleep(0.05)
        deadline = time.monotonic() + 600
        while Send.objects.get(pk=send.pk).status != Send.Status.COMPLETED:
            if time.monotonic() > deadline:
                raise SystemExit(f"{label}: send not completed within 600 s")
            engine_tick(workers)
            time.sleep(0.2)
        records = requests.get(
            f"{sandbox_url}/_sandbox/requests", params={"limit": recipients * 2}, timeout=60
        ).json()["requests"]
        stats = requests.get(f"{sandbox_url}/_sandbox/stats", timeout=10).json()
        return measure(Send.objects.get(pk=send.pk), records, stats)
    finally:
        if pool:
            pool.stop()
        stop(sandbox)
        cleanup(org, send)


def bench_throughput(recipients: int, latency_ms: float) -> dict:
    from django.db.models import Count, Max, Min

    from campaigns.models import SendRecipient

    def measure(send, records, stats):
        rows = SendRecipient.objects.filter(send=send)
        first_last = rows.aggregate(first=Min("sent_at"), last=Max("sent_at"))
        by_status = dict(rows.values_list("status").annotate(n=Count("id")))
        seconds = (first_last["last"] - send.scheduled_for).total_seconds()
        first = (first_last["first"] - send.scheduled_for).total_seconds()
        log(
            f"latency {latency_ms:.0f} ms: {by_status} in {seconds:.1f} s "
            f"({recipients / seconds:,.0f}/s), first sent {first:+.2f} s after fire time"
        )
        key = f"throughput_{int(latency_ms)}ms"
        return {
            f"{key}_seconds": round(seconds, 2),
            f"{key}_messages_per_second": round(recipients / seconds, 1),
            f"{key}_first_sent_after_fire_s": round(first, 2),
            f"{key}_sent": by_status.get("sent", 0),
            f"{key}_duplicate_recipients": stats["duplicate_recipients"],
        }

    return run_send(f"throughput{int(latency_ms)}", recipients, 100_000, 2, latency_ms, measure)


def max_in_any_window(stamps, width=1.0) -> int:
    stamps = sorted(stamps)
    best, start = 0, 0
    for end, stamp in enumerate(stamps):
        while stamp - stamps[start] >= width:
            start += 1
        best = max(best, end - start + 1)
    return best


def bench_rate(seconds: int, rate: int = 20) -> dict:
    def measure(send, records, stats):
        stamps = sorted(r["at"] for r in records if r["wamid"])
        achieved = (len(stamps) - 1) / (stamps[-1] - stamps[0])
        peak = max_in_any_window(stamps)
        log(f"rate {rate}/s: achieved {achieved:.3f}/s over {len(stamps)} messages, peak {peak}/s")
        return {
            "rate_target": rate,
            "rate_achieved": round(achieved, 3),
            "rate_deviation_pct": round(100 * (achieved - rate) / rate, 2),
            "rate_max_in_any_second": peak,
            "rate_duplicate_recipients": stats["duplicate_recipients"],
        }

    return run_send("rate", rate * seconds, rate, 3, 0, measure)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--recipients", type=int, default=60_000)
    parser.add_argument("--rate-seconds", type=int, default=60)
    parser.add_argument("--only", choices=["materialize", "throughput", "rate"])
    args = parser.parse_args()
    # The bench owns its Redis database: brokers, queues and limiter keys of earlier runs go.
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    os.environ.update(
        REDIS_URL=REDIS_URL,
        CELERY_BROKER_URL=REDIS_URL,
        RATE_LIMIT_REDIS_URL=REDIS_URL,
        CELERY_TASK_DEFAULT_QUEUE=f"bench-{uuid.uuid4().hex[:8]}",
    )
    setup_django()
    clear_bench_database()

    figures = {}
    if args.only in (None, "materialize"):
        figures |= bench_materialize(args.leads) | {"target_materialize_seconds": 1.5}
    if args.only in (None, "throughput"):
        for latency in (0, 150):
            figures |= bench_throughput(args.recipients, latency)
        figures["target_throughput_seconds"] = 60
    if args.only in (None, "rate"):
        figures |= bench_rate(args.rate_seconds) | {"target_rate_window_max": 21}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
