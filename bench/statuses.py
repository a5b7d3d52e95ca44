"""Status-webhook benchmark over HTTP (issue 17.5): Meta's delivery reports for a large send,
posted signed to /webhooks/whatsapp on a real gunicorn server, in a recipient table of the
size a busy installation has.

    .venv/bin/python bench/statuses.py [--recipients 100000] [--background 1000000]
                                       [--batch 100] [--concurrency 4] [--workers 2]

--recipients messages of a sending send are `sent`, each with a wamid; --background rows of
an older finished send of the same number (read, with wamids) fill the table around them.
Every message then gets a `delivered` report and then a `read` one, --batch statuses per
POST (as Meta batches them under load), --concurrency POSTs in flight. Target ≥ 10,000
statuses/s; every row must end `read`. Uses BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/setter_bench). Prints one JSON object on its last line.
"""

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import bench_organization, free_port, setup_django, start_gunicorn, timed  # noqa: E402

TARGET_STATUSES_PER_SECOND = 10_000


def build_send(recipients: int, background: int):
    """A number with a sending send of `recipients` sent messages and a finished send of
    `background` read ones; returns (number, send)."""
    from django.db import connection
    from django.utils import timezone

    from campaigns.models import Campaign, Send, SendRecipient

    _, number, template = bench_organization("statuses")
    campaign = Campaign.objects.create(
        organization=number.organization,
        name="statuses",
        whatsapp_number=number,
        status=Campaign.Status.RUNNING,
        product_policy_confirmed=True,
    )
    now = timezone.now()
    sends = {}
    for status, day in [(Send.Status.COMPLETED, 1), (Send.Status.SENDING, 0)]:
        sends[status] = Send.objects.create(
            campaign=campaign,
            local_date=(now - dt.timedelta(days=day)).date(),
            local_time=now.time(),
            scheduled_for=now - dt.timedelta(days=day),
            template=template,
            parameter_mapping=["first_name"],
            status=status,
        )
    table = SendRecipient._meta.db_table
    with connection.cursor() as cursor:
        for send, count, status, prefix in [
            (sends[Send.Status.COMPLETED], background, "read", "old"),
            (sends[Send.Status.SENDING], recipients, "sent", "new"),
        ]:
            cursor.execute(
                f"INSERT INTO {table} (send_id, phone_e164, limited_reporting, status, wamid, "
                "attempts, error_code, error_title, error_detail, skip_reason, claim_token, "
                "queued_at, sent_at, updated_at) "
                f"SELECT %s, '+4479' || lpad(g::text, 8, '0'), false, %s, "
                f"'wamid.{prefix}.' || g, 1, '', '', '', '', '', now(), now(), now() "
                "FROM generate_series(1, %s) g",
                [send.pk, status, count],
            )
        cursor.execute(f"VACUUM ANALYZE {table}")
    return number, sends[Send.Status.SENDING]


def payload(number, statuses: list[dict]) -> dict:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": number.waba_id,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": number.display_phone_number,
                                "phone_number_id": number.phone_number_id,
                            },
                            "statuses": statuses,
                        },
                    }
                ],
            }
        ],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--background", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    setup_django()
    import orjson
    import requests
    from django.conf import settings

    from campaigns.models import SendRecipient
    from messaging.sandbox.webhooks import sign

    number, send = build_send(args.recipients, args.background)
    port = free_port()
    server = start_gunicorn(port, args.workers)
    url = f"http://127.0.0.1:{port}/webhooks/whatsapp"
    timestamp = str(int(time.time()))
    bodies = []
    for status in ("delivered", "read"):
        for start in range(1, args.recipients + 1, args.batch):
            reports = [
                {"id": f"wamid.new.{n}", "status": status, "timestamp": timestamp,
                 "recipient_id": f"4479{n:08d}"}
                for n in range(start, min(start + args.batch, args.recipients + 1))
            ]  # fmt: skip
            bodies.append(orjson.dumps(payload(number, reports)))
    sessions: dict[int, requests.Session] = {}

    def post(body: bytes) -> float:
        import threading

        session = sessions.setdefault(threading.get_ident(), requests.Session())
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(settings.WHATSAPP_APP_SECRET, body),
        }
        seconds, answer = timed(session, "POST", url, body, headers)
        assert answer["status"] == "ok", answer
        return seconds

    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            latencies = list(pool.map(post, bodies))
        seconds = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait()
    read = SendRecipient.objects.filter(send=send, status=SendRecipient.Status.READ).count()
    organization = send.campaign.organization
    send.campaign.delete()  # its sends and recipients with it
    organization.delete()
    statuses = 2 * args.recipients
    rate = statuses / seconds
    print(
        f"{statuses:,} statuses in {seconds:.2f} s ({rate:,.0f}/s), {read:,} rows read",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "statuses": statuses,
                "statuses_batch": args.batch,
                "statuses_background_rows": args.background,
                "statuses_seconds": round(seconds, 2),
                "statuses_per_second": round(rate),
                "statuses_post_median_ms": round(1000 * statistics.median(latencies), 1),
                "statuses_rows_read": read,
                "target_statuses_per_second": TARGET_STATUSES_PER_SECOND,
                "statuses_pass": rate >= TARGET_STATUSES_PER_SECOND and read == args.recipients,
            }
        )
    )


if __name__ == "__main__":
    main()
