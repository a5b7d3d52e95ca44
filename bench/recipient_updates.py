"""The dispatcher's bulk recipient writes on PostgreSQL (campaigns.recipient_sql, issue 17.2).

    .venv/bin/python bench/recipient_updates.py [--rows 1000] [--batches 60]

Each batch is what a worker writes per group of messages: `mark_sending` of --rows claimed
rows (id, parameters) and `record` of their `sent` outcomes (id, wamid, at), through the
product's own functions, on a send of 20 × --rows recipients. Reports per batch the median
wall time and the mean CPU of this process (the client-side conversion and Django) and of its
PostgreSQL backend (parsing, planning, the update), read from /proc: the bench expects the
server on this machine. Prints one JSON object on its last line.
"""

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _setup import bench_organization, setup_django  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def recipients_of_a_send(rows: int):
    """A send of `rows` recipient rows, all claimed by one token."""
    from django.db import connection
    from django.utils import timezone

    from campaigns.models import Campaign, Send, SendRecipient

    org, number, template = bench_organization("updates")
    campaign = Campaign.objects.create(
        organization=org, name="updates", whatsapp_number=number, product_policy_confirmed=True
    )
    now = timezone.now()
    send = Send.objects.create(
        campaign=campaign,
        local_date=now.date(),
        local_time=now.time(),
        time_zone="UTC",
        scheduled_for=now,
        template=template,
        parameter_mapping=["first_name"],
    )
    token = uuid.uuid4().hex
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {SendRecipient._meta.db_table} (send_id, phone_e164, limited_reporting, "
            "status, wamid, attempts, error_code, error_title, error_detail, skip_reason, "
            "claim_token, queued_at, updated_at) "
            "SELECT %s, '+4479' || lpad(n::text, 8, '0'), false, 'claimed', '', 0, '', '', '', "
            "'', %s, %s, %s FROM generate_series(1, %s) n",
            [send.pk, token, now, now, rows],
        )
        cursor.execute(f"VACUUM ANALYZE {SendRecipient._meta.db_table}")
    ids = list(SendRecipient.objects.filter(send=send).order_by("id").values_list("id", flat=True))
    return org, send, token, ids


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=60)
    args = parser.parse_args()
    setup_django()
    from django.db import connection
    from django.utils import timezone

    from campaigns import recipients
    from campaigns.models import SendRecipient

    org, send, token, ids = recipients_of_a_send(args.rows * 20)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    figures: dict[str, list[tuple[float, float, float]]] = {}

    def measure(name: str, write, *args):
        wall, client, server = time.perf_counter(), time.process_time(), cpu_seconds(backend)
        result = write(*args)
        figures.setdefault(name, []).append(
            (
                time.perf_counter() - wall,
                time.process_time() - client,
                cpu_seconds(backend) - server,
            )
        )
        return result

    for number in range(args.batches):
        start = (number % 20) * args.rows
        batch = ids[start : start + args.rows]
        parameters = [(pk, ["Ann"]) for pk in batch]
        marked = measure("mark_sending", recipients.mark_sending, token, parameters)
        if len(marked) != len(batch):
            raise SystemExit(f"mark_sending moved {len(marked)} of {len(batch)} rows")
        at = timezone.now()
        outcomes = [
            recipients.Outcome(pk, "sent", at=at, wamid=f"wamid.{pk}.{number}", answered=True)
            for pk in batch
        ]
        measure("record_sent", recipients.record, outcomes)
        # Back to claimed for a later round over the same rows (not measured).
        SendRecipient.objects.filter(pk__in=batch).update(status="claimed", claim_token=token)
    sent = SendRecipient.objects.filter(send=send, wamid__startswith="wamid.").count()
    send.campaign.delete()
    org.delete()
    result: dict[str, float | int] = {"rows_per_batch": args.rows, "batches": args.batches}
    for name, batches in figures.items():
        walls, clients, servers = zip(*batches, strict=True)
        result[f"{name}_ms"] = round(1000 * statistics.median(walls), 3)
        # CPU as the mean: /proc counts it in clock ticks (10 ms).
        result[f"{name}_client_cpu_ms"] = round(1000 * statistics.fmean(clients), 3)
        result[f"{name}_server_cpu_ms"] = round(1000 * statistics.fmean(servers), 3)
    result["rows_recorded"] = sent
    print(json.dumps(result))


if __name__ == "__main__":
    main()
