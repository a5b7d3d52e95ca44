"""Segment REST API benchmark over HTTP, against a real gunicorn server on PostgreSQL.

    .venv/bin/python bench/api.py [--rounds 5] [--workers 2] [--leads 100000]

An organization with --leads leads; each round creates an empty segment, adds 10,000 of the
leads as targets in one call (a different slice each round), then reads them back as one
10,000-target page of the targets query — each request timed end to end. Targets: add
≤ 1.0 s, query ≤ 0.5 s (medians). Uses BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/setter_bench). Prints one JSON object on its last line.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import free_port, setup_django, start_gunicorn, stop, timed  # noqa: E402

TARGETS = 10_000
TARGET_ADD_S = 1.0
TARGET_QUERY_S = 0.5


def build_organization(leads: int):
    """An organization with an API key and one uploaded audience of `leads` ok leads."""
    from django.db import connection

    from audiences.models import Audience, Lead
    from setter.models import Organization
    from setter.services import create_api_key

    stamp = str(time.time_ns())
    org = Organization.objects.create(name=f"API bench {stamp}", slug=f"api-bench-{stamp}")
    _, raw_key = create_api_key(org, "bench")
    audience = Audience.objects.create(
        organization=org, name="CRM", status=Audience.Status.READY, size=leads
    )
    columns = [
        "audience_id", "organization_id", "row_number", "external_id", "phone_raw",
        "phone_e164", "region", "first_name", "last_name", "email", "variables",
        "ingest_status", "reject_reason", "limited_reporting",
    ]  # fmt: skip
    with connection.cursor() as cursor:
        sql = f"COPY {Lead._meta.db_table} ({', '.join(columns)}) FROM STDIN"
        with cursor.cursor.copy(sql) as copy:
            for n in range(leads):
                phone = f"+4477{n:08d}"
                copy.write_row(
                    (audience.pk, org.pk, n + 1, f"crm-{n:07d}", phone, phone, "GB", "Ann",
                     "Lee", f"ann{n}@example.com", '{"tier": "gold"}', "ok", "", True)
                )  # fmt: skip
        cursor.execute("ANALYZE " + Lead._meta.db_table)
    lead_ids = list(audience.leads.order_by("pk").values_list("pk", flat=True))
    return org, raw_key, [str(pk) for pk in lead_ids]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--leads", type=int, default=100_000)
    args = parser.parse_args()
    if args.leads < args.rounds * TARGETS:
        raise SystemExit(f"--leads must be at least rounds × {TARGETS:,}")

    setup_django()
    import orjson
    import requests

    org, raw_key, lead_ids = build_organization(args.leads)
    port = free_port()
    server = start_gunicorn(port, args.workers)
    base = f"http://127.0.0.1:{port}/api/v1/segments"
    headers = {"x-api-key": raw_key, "Content-Type": "application/json"}
    add_seconds, query_seconds = [], []
    try:
        with requests.Session() as session:
            for round_ in range(args.rounds):
                _, created = timed(
                    session, "POST", base, orjson.dumps({"name": f"round {round_}"}), headers
                )
                segment = created["data"]["id"]
                targets = lead_ids[round_ * TARGETS : (round_ + 1) * TARGETS]
                body = orjson.dumps({"targetIds": targets})
                seconds, answer = timed(session, "POST", f"{base}/{segment}/targets", body, headers)
                assert answer == {"added": TARGETS, "size": TARGETS}, answer
                add_seconds.append(seconds)

                body = orjson.dumps({"limit": TARGETS})
                seconds, page = timed(
                    session, "POST", f"{base}/{segment}/targets/query", body, headers
                )
                assert [t["targetId"] for t in page["targets"]] == targets
                assert page["next"] is None
                query_seconds.append(seconds)
                print(
                    f"round {round_ + 1}: add {seconds_text(add_seconds[-1])}, "
                    f"query {seconds_text(seconds)}",
                    file=sys.stderr,
                )
    finally:
        stop(server)
        org.delete()

    add_median = statistics.median(add_seconds)
    query_median = statistics.median(query_seconds)
    print(
        json.dumps(
            {
                "add_10k_targets_median_s": round(add_median, 3),
                "query_10k_targets_median_s": round(query_median, 3),
                "target_add_s": TARGET_ADD_S,
                "target_query_s": TARGET_QUERY_S,
                "add_runs_s": [round(s, 3) for s in add_seconds],
                "query_runs_s": [round(s, 3) for s in query_seconds],
                "organization_leads": args.leads,
                "gunicorn_workers": args.workers,
                "meets_targets": add_median <= TARGET_ADD_S and query_median <= TARGET_QUERY_S,
            }
        )
    )


def seconds_text(seconds: float) -> str:
    return f"{seconds:.3f} s"


if __name__ == "__main__":
    main()
