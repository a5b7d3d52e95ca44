"""Audience-ingest benchmark on PostgreSQL: the product path against the bare limit.

    .venv/bin/python bench/ingest.py [--rows 1000000] [--keep-file]

Generates a CSV of --rows realistic leads (Brazilian numbers written nationally, UK, US,
German, Indian and Mexican numbers in international formats, ~3% invalid, ~2% repeated,
extra columns) and ingests it through the real path: create_csv_audience (enqueue=False)
then ingest_audience. Peak RSS is the largest sum seen over this process and all its
descendants (the parser processes), sampled every 50 ms.

Then, on the same file and in the same run, the bare limit: the same parse and
classification (`process_chunk`, i.e. `classify_lead` per row and its COPY text) on the same
number of processes, streamed through one COPY into the lead table for a scratch audience
(the same table, indexes and foreign keys), nothing else. Both start from a vacuumed lead
table. Target (issue 17.6): the product ≥ 0.8 × the limit's rows/s with peak RSS ≤ 200 MB,
so the figure means the same on a busy and a quiet machine. Prints one JSON object on its
last line.
"""

import argparse
import csv
import io
import json
import os
import random
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import setup_django  # noqa: E402

TARGET_OVER_LIMIT = 0.8
TARGET_PEAK_RSS_MB = 200
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20
BRAZIL_AREA_CODES = (11, 19, 21, 27, 31, 41, 47, 48, 51, 61, 62, 71, 81, 85, 91)


def random_phone(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.40:
        area = rng.choice(BRAZIL_AREA_CODES)
        return f"({area}) 9{rng.randint(6000, 9999)}-{rng.randint(0, 9999):04d}"
    if kind < 0.55:
        return f"+44 7{rng.randint(400, 599)} {rng.randint(0, 999999):06d}"
    if kind < 0.65:
        return f"+1 (212) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"
    if kind < 0.75:
        return f"+49 151 {rng.randint(10000000, 99999999)}"
    if kind < 0.85:
        return f"+91 9{rng.randint(100000000, 999999999)}"
    if kind < 0.97:
        return f"+52 55 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"
    return rng.choice(["12345", "n/a", "+999 123", "", "555-CALL-NOW"])


def generate_csv(path: Path, rows: int) -> None:
    rng = random.Random(20240601)
    recent = []
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["external_id", "phone", "first_name", "last_name", "email", "city", "plan"]
        )
        for n in range(1, rows + 1):
            if recent and rng.random() < 0.02:
                phone = rng.choice(recent)
            else:
                phone = random_phone(rng)
                recent = (recent + [phone])[-1000:] if n % 10 == 0 else recent
            writer.writerow(
                [
                    f"crm-{n}",
                    phone,
                    rng.choice(["Ana", "João", "Maria", "Pedro", "Zoë", "Liam"]),
                    rng.choice(["Silva", "Santos", "O'Brien", "Müller", "Sharma"]),
                    f"lead{n}@example.com",
                    rng.choice(["São Paulo", "London", "Berlin, Mitte", "Mumbai", "CDMX"]),
                    rng.choice(["free", "pro", "team"]),
                ]
            )


class TreeRssSampler(threading.Thread):
    """Largest summed RSS of this process and its descendants, read from /proc."""

    def __init__(self, interval=0.05):
        super().__init__(daemon=True)
        self.interval = interval
        self.peak_mb = 0.0
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            self.peak_mb = max(self.peak_mb, tree_rss_mb(os.getpid()))
            self._stop_event.wait(self.interval)

    def stop(self):
        self._stop_event.set()
        self.join()
        self.peak_mb = max(self.peak_mb, tree_rss_mb(os.getpid()))


def tree_rss_mb(root: int) -> float:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            statm = Path(f"/proc/{entry}/statm").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = int(statm.split()[1])
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total * PAGE_MB


def delete_leads(org) -> None:
    """One DELETE: the ORM's cascade would load a million leads."""
    from django.db import connection

    from audiences.models import Lead

    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Lead._meta.db_table} WHERE organization_id = %s", [org.pk])


def delete_organization(org) -> None:
    delete_leads(org)
    org.delete()


def vacuum_leads() -> None:
    """Reclaim the deleted leads of the previous phase so each phase starts alike."""
    from django.db import connection

    from audiences.models import Lead

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {Lead._meta.db_table}")


def measure_limit(path: Path, org, processes: int) -> tuple[float, int]:
    """Seconds and leads for the bare parse + COPY of the file (see the module docstring).

    The parent reads and batches the CSV as the ingest does, keeps as many batches in flight
    per process, and streams each result into a single COPY in one transaction.
    """
    import multiprocessing
    from collections import deque
    from dataclasses import replace

    from django.conf import settings
    from django.db import connection, transaction

    from audiences.ingest_rows import ChunkJob, map_columns, process_chunk, sniff_delimiter
    from audiences.models import Audience, Lead
    from audiences.services import CHUNKS_IN_FLIGHT_PER_PROCESS, lead_copy_sql

    audience = Audience.objects.create(
        organization=org, name="bench limit", status=Audience.Status.INGESTING
    )
    batch_size = settings.AUDIENCE_INGEST_BATCH_SIZE
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["audiences.ingest_rows"])
    started = time.perf_counter()
    with path.open("rb") as raw:
        delimiter = sniff_delimiter(raw.read(64 * 1024))
        raw.seek(0)
        reader = csv.reader(
            io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""), delimiter=delimiter
        )
        template = ChunkJob(
            rows=[],
            first_row_number=1,
            columns=map_columns(next(reader)),
            default_region="BR",
            statuses={status.value: status.value for status in Lead.IngestStatus},
            copy_prefix=(audience.pk, org.pk),
        )

        def jobs():
            first_row_number, rows = 1, []
            for row in reader:
                rows.append(row)
                if len(rows) == batch_size:
                    yield replace(template, rows=rows, first_row_number=first_row_number)
                    first_row_number, rows = first_row_number + len(rows), []
            if rows:
                yield replace(template, rows=rows, first_row_number=first_row_number)

        with (
            context.Pool(processes) as pool,
            transaction.atomic(),
            connection.connection.cursor() as cursor,
            cursor.copy(lead_copy_sql()) as copy,
        ):
            pending: deque = deque()
            for job in jobs():
                pending.append(pool.apply_async(process_chunk, (job,)))
                if len(pending) >= processes * CHUNKS_IN_FLIGHT_PER_PROCESS:
                    copy.write(pending.popleft().get())
            while pending:
                copy.write(pending.popleft().get())
    seconds = time.perf_counter() - started
    return seconds, Lead.objects.filter(audience=audience).count()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep-file", action="store_true", help="leave the CSV in the temp dir")
    args = parser.parse_args()
    setup_django(
        os.environ.get("BENCH_DATABASE_URL")
        or (
            os.environ.get("DATABASE_URL", "")
            if "postgres" in os.environ.get("DATABASE_URL", "")
            else None
        )
    )

    from django.conf import settings
    from django.core.files import File

    from audiences.services import create_csv_audience, ingest_audience
    from setter.models import Organization

    workdir = Path(tempfile.mkdtemp(prefix="setter-bench-ingest-"))
    settings.MEDIA_ROOT = workdir / "media"
    path = workdir / "audience.csv"
    started = time.perf_counter()
    generate_csv(path, args.rows)
    size_mb = path.stat().st_size / 2**20
    print(
        f"generated {args.rows:,} rows ({size_mb:.1f} MB) in {time.perf_counter() - started:.1f}s"
    )

    stamp = str(time.time_ns())
    org = Organization.objects.create(name=f"Bench ingest {stamp}", slug=f"bench-ingest-{stamp}")
    try:
        vacuum_leads()
        sampler = TreeRssSampler()
        sampler.start()
        started = time.perf_counter()
        with path.open("rb") as upload:
            audience = create_csv_audience(
                organization=org,
                name="bench",
                file=File(upload, name="audience.csv"),
                default_region="BR",
                enqueue=False,
            )
        audience = ingest_audience(audience.pk)
        seconds = time.perf_counter() - started
        sampler.stop()
        # What landed in the database, not what was asked for.
        ingested = audience.leads.count()
        delete_leads(org)
        vacuum_leads()
        limit_seconds, limit_leads = measure_limit(
            path, org, max(1, settings.AUDIENCE_INGEST_PROCESSES)
        )
    finally:
        delete_organization(org)
        if not args.keep_file:
            for item in sorted(workdir.rglob("*"), reverse=True):
                item.unlink() if item.is_file() else item.rmdir()
            workdir.rmdir()

    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    counts = {
        status: getattr(audience, f"count_{status}")
        for status in ("ok", "invalid_phone", "duplicate", "ineligible_geo", "limited_reporting")
    }
    print(f"status {audience.status} {audience.error}".rstrip())
    print(f"rows {audience.total_rows:,}; leads stored {ingested:,}; counts {counts}")
    if audience.status != audience.Status.READY or not ingested:
        raise SystemExit(f"the ingest failed: {audience.status} {audience.error}".rstrip())
    if limit_leads != ingested:
        raise SystemExit(f"the limit stored {limit_leads:,} leads, the ingest {ingested:,}")
    rate, limit_rate = ingested / seconds, limit_leads / limit_seconds
    over_limit = rate / limit_rate
    print(f"ingest {seconds:.1f}s = {rate:,.0f} rows/s")
    print(f"limit (parse + one COPY) {limit_seconds:.1f}s = {limit_rate:,.0f} rows/s")
    print(f"ingest / limit = {over_limit:.2f}")
    print(
        f"peak RSS of the ingest: process tree {sampler.peak_mb:.0f} MB (this process, whole run {self_mb:.0f} MB)"
    )
    print(
        json.dumps(
            {
                "rows": args.rows,
                "leads_stored": ingested,
                "ingest_seconds": round(seconds, 2),
                "ingest_rows_per_second": round(rate),
                "ingest_limit_seconds": round(limit_seconds, 2),
                "ingest_limit_rows_per_second": round(limit_rate),
                "ingest_over_limit": round(over_limit, 3),
                "ingest_peak_rss_mb": round(sampler.peak_mb, 1),
                "target_over_limit": TARGET_OVER_LIMIT,
                "target_peak_rss_mb": TARGET_PEAK_RSS_MB,
                "pass": over_limit >= TARGET_OVER_LIMIT and sampler.peak_mb <= TARGET_PEAK_RSS_MB,
            }
        )
    )


if __name__ == "__main__":
    main()
