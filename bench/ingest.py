"""Audience-ingest benchmark on PostgreSQL.

    .venv/bin/python bench/ingest.py [--rows 1000000] [--keep-file]

Generates a CSV of --rows realistic leads (Brazilian numbers written nationally, UK, US,
German, Indian and Mexican numbers in international formats, ~3% invalid, ~2% repeated,
extra columns) and ingests it through the real path: create_csv_audience (enqueue=False)
then ingest_audience. Target: ≥ 20,000 rows/s and peak RSS ≤ 300 MB, where the RSS is
the largest sum seen over this process and all its descendants (the parser processes),
sampled every 50 ms. Prints one JSON object on its last line.
"""

import argparse
import csv
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

TARGET_ROWS_PER_SECOND = 20_000
TARGET_PEAK_RSS_MB = 300
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


def delete_organization(org) -> None:
    """One DELETE for the leads first: the ORM's cascade would load a million of them."""
    from django.db import connection

    from audiences.models import Lead

    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Lead._meta.db_table} WHERE organization_id = %s", [org.pk])
    org.delete()


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
    finally:
        delete_organization(org)
        if not args.keep_file:
            for item in sorted(workdir.rglob("*"), reverse=True):
                item.unlink() if item.is_file() else item.rmdir()
            workdir.rmdir()

    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    counts = {
        status: getattr(audience, f"count_{status}")
        for status in ("ok", "invalid_phone", "duplicate", "ineligible_geo", "limited_reporting")
    }
    print(f"status {audience.status} {audience.error}".rstrip())
    print(f"rows {audience.total_rows:,}; leads stored {ingested:,}; counts {counts}")
    if audience.status != audience.Status.READY or not ingested:
        raise SystemExit(f"the ingest failed: {audience.status} {audience.error}".rstrip())
    print(f"ingest {seconds:.1f}s = {ingested / seconds:,.0f} rows/s")
    print(
        f"peak RSS: process tree {sampler.peak_mb:.0f} MB "
        f"(this process {self_mb:.0f} MB, largest reaped child {children_mb:.0f} MB)"
    )
    print(
        json.dumps(
            {
                "rows": args.rows,
                "leads_stored": ingested,
                "seconds": round(seconds, 2),
                "rows_per_second": round(ingested / seconds),
                "peak_rss_mb": round(sampler.peak_mb, 1),
                "target_rows_per_second": TARGET_ROWS_PER_SECOND,
                "target_peak_rss_mb": TARGET_PEAK_RSS_MB,
            }
        )
    )


if __name__ == "__main__":
    main()
