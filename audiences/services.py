"""Audiences from uploaded CSVs (stored, then streamed into leads) and from the segment API.

The ingest reads the file as a stream in batches, so memory does not grow with the file.
Phone parsing dominates its cost (~25–40 µs a number), so large files are parsed by a small
pool of processes while this one reads the CSV and feeds the database (COPY on PostgreSQL).
Duplicates and counts are then settled by one statement each, never row by row.
"""

import csv
import io
import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import replace
from multiprocessing.pool import AsyncResult
from typing import cast

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.utils import timezone

from . import selectors, statistics
from .ingest_rows import (
    LEAD_FIELDS,
    ChunkJob,
    IngestError,
    classify_lead,
    map_columns,
    process_chunk,
    sniff_delimiter,
)
from .models import Audience, Lead

logger = logging.getLogger(__name__)

SNIFF_BYTES = 64 * 1024
# In flight per parser process: enough to keep it busy, few enough to bound memory.
CHUNKS_IN_FLIGHT_PER_PROCESS = 2

ProgressCallback = Callable[[int, int], None]


def create_csv_audience(
    *, organization, name, file, default_region="US", phone_column="", enqueue=True
) -> Audience:
    """Store an uploaded CSV as a pending audience; the ingest runs after the commit."""
    region = (default_region or "").strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(
            {"default_region": f"Unknown region {default_region!r}: use an ISO code like GB."}
        )
    audience = Audience(
        organization=organization,
        name=name,
        source=Audience.Source.CSV,
        status=Audience.Status.PENDING,
        default_region=region,
        phone_column=(phone_column or "").strip(),
    )
    audience.file.save(os.path.basename(file.name or "audience.csv"), file, save=False)
    audience.total_bytes = audience.file.size
    audience.save()
    if enqueue:
        from .tasks import ingest_audience_task

        transaction.on_commit(lambda: ingest_audience_task.delay(audience.pk))
    return audience


def create_api_audience(
    *, organization, name: str, description: str = "", leads: list[dict]
) -> tuple[Audience, list[Lead]]:
    """A ready audience of the given leads (seed 002's persons), in their order.

    Each lead is a dict of phone, external_id, first_name, last_name, email, time_zone and variables.
    They go through the CSV's rules (normalisation, US ineligible for marketing, limited
    reporting, later duplicates of a phone), and every one is stored, invalid ones too, so
    the caller gets an id per lead. All or nothing: one transaction.
    """
    statuses = {status.value: status.value for status in Lead.IngestStatus}
    now = timezone.now()
    with transaction.atomic():
        audience = Audience.objects.create(
            organization=organization,
            name=name,
            description=description,
            source=Audience.Source.API,
            status=Audience.Status.INGESTING,
            default_region=settings.AUDIENCE_DEFAULT_REGION,
            ingest_started_at=now,
        )
        Lead.objects.bulk_create(
            (
                _api_lead(audience, row_number, fields, statuses)
                for row_number, fields in enumerate(leads, start=1)
            ),
            batch_size=settings.AUDIENCE_INGEST_BATCH_SIZE,
        )
        _mark_duplicates(audience.pk)
        statistics.analyze_after_write(len(leads), Lead)
        counts = selectors.count_leads_by_status(audience.pk)
        _update(
            audience,
            status=Audience.Status.READY,
            total_rows=len(leads),
            size=len(leads),
            ingest_finished_at=timezone.now(),
            **{f"count_{status}": count for status, count in counts.items()},
        )
    audience.refresh_from_db()
    return audience, list(audience.leads.order_by("row_number"))


def _api_lead(audience: Audience, row_number: int, fields: dict, statuses: dict) -> Lead:
    lead_row = classify_lead(
        row_number=row_number,
        phone_raw=fields["phone"],
        default_region=audience.default_region,
        statuses=statuses,
        external_id=fields.get("external_id", ""),
        first_name=fields.get("first_name", ""),
        last_name=fields.get("last_name", ""),
        email=fields.get("email", ""),
        time_zone=fields.get("time_zone", ""),
        variables=fields.get("variables", {}),
    )
    return Lead(
        audience_id=audience.pk,
        organization_id=audience.organization_id,
        **dict(zip(LEAD_FIELDS, lead_row, strict=True)),
    )


def ingest_audience(audience_id: int, *, progress: ProgressCallback | None = None) -> Audience:
    """Read the audience's CSV into leads; the audience ends ready or failed with a reason.

    A run always starts from zero (a redelivered task after a worker crash must not add
    rows twice), and nothing is marked ready before every row, the duplicate pass and the
    counts are done. An audience already ready or failed is left as it is.
    """
    audience = Audience.objects.select_related("organization").get(pk=audience_id)
    if audience.status not in (Audience.Status.PENDING, Audience.Status.INGESTING):
        return audience
    _delete_leads(audience.pk)
    total_bytes = audience.file.size if audience.file else 0
    _update(
        audience,
        status=Audience.Status.INGESTING,
        error="",
        total_bytes=total_bytes,
        ingest_started_at=timezone.now(),
        ingest_finished_at=None,
        **_zero_counts(),
    )
    try:
        total_rows = _load_leads(audience, progress)
        _mark_duplicates(audience.pk)
        statistics.analyze_after_write(total_rows, Lead)
        counts = selectors.count_leads_by_status(audience.pk)
    except IngestError as exc:
        _fail(audience, str(exc))
    except Exception:
        _fail(audience, "The ingest stopped on an internal error; upload the file again.")
        raise
    else:
        _update(
            audience,
            status=Audience.Status.READY,
            total_rows=total_rows,
            size=total_rows,
            processed_bytes=total_bytes,
            ingest_finished_at=timezone.now(),
            **{f"count_{status}": count for status, count in counts.items()},
        )
    audience.refresh_from_db()
    return audience


def _update(audience: Audience, **fields) -> None:
    Audience.objects.filter(pk=audience.pk).update(**fields)


def _zero_counts() -> dict:
    return {
        "processed_bytes": 0,
        "total_rows": 0,
        **{f"count_{status}": 0 for status in selectors.COUNTED_STATUSES},
    }


def _fail(audience: Audience, error: str) -> None:
    _delete_leads(audience.pk)
    _update(
        audience,
        status=Audience.Status.FAILED,
        error=error,
        ingest_finished_at=timezone.now(),
        **_zero_counts(),
    )


def _delete_leads(audience_id: int) -> None:
    """Drop a not-yet-ready audience's leads in one statement.

    Nothing references leads of an audience that never became ready, and the ORM's
    delete() would load every lead to handle relations.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {connection.ops.quote_name(Lead._meta.db_table)} WHERE audience_id = %s",
            [audience_id],
        )


def _load_leads(audience: Audience, progress: ProgressCallback | None) -> int:
    total_bytes = audience.total_bytes
    if not total_bytes:
        raise IngestError("The file is empty.")
    copies = connection.vendor == "postgresql"
    with (
        _commits_unflushed() if copies else nullcontext(),
        ThreadPoolExecutor(1) as db_thread,
        audience.file.open("rb") as raw,
    ):
        write = _copy_writer(db_thread) if copies else _bulk_writer(audience)
        head = raw.read(SNIFF_BYTES)
        _reject_binary(head)
        raw.seek(0)
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")
        reader = csv.reader(text, delimiter=sniff_delimiter(head))
        header = _read_header(reader)
        template = ChunkJob(
            rows=[],
            first_row_number=1,
            columns=map_columns(header, audience.phone_column),
            default_region=audience.default_region,
            statuses={status.value: status.value for status in Lead.IngestStatus},
            copy_prefix=(audience.pk, audience.organization_id) if copies else (),
        )
        jobs = _chunk_jobs(reader, raw, template)
        total_rows = previous_position = 0
        with ExitStack() as batch_in_flight:
            for result, row_count, position in _parsed(jobs, _parser_processes(total_bytes)):
                # The previous batch was stored while this one was parsed: settle it, then
                # hand this one to the database and parse the next.
                batch_in_flight.close()
                if total_rows:
                    _report(audience, progress, total_rows, previous_position)
                batch_in_flight.enter_context(write(result))
                total_rows += row_count
                previous_position = position
        if total_rows:
            _report(audience, progress, total_rows, previous_position)
    if not total_rows:
        raise IngestError("The file has a header row but no data rows.")
    return total_rows


@contextmanager
def _commits_unflushed():
    """Commit the load's batches and progress without waiting for the WAL flush.

    Each batch's COPY and each progress update is its own commit, two per batch, and waiting
    for the flush (~4 ms on an ordinary disk) held the next batch back every time. Nothing
    durable is lost: a crash mid-ingest restarts it from zero anyway, and the commit that
    marks the audience ready waits for the flush, which takes every earlier commit with it.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")


def _report(audience, progress, total_rows, position) -> None:
    _update(audience, processed_bytes=position, total_rows=total_rows)
    if progress:
        progress(position, audience.total_bytes)


def _reject_binary(head: bytes) -> None:
    if b"\x00" not in head:
        return
    hint = (
        " It looks like an Excel or other ZIP file: save it as “CSV UTF-8” and upload that."
        if head.startswith(b"PK\x03\x04")
        else " Export it as “CSV UTF-8” and upload that."
    )
    raise IngestError("This is not a CSV file: it contains binary data." + hint)


def _read_header(reader) -> list[str]:
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                return row
    except UnicodeDecodeError as exc:
        raise _not_utf8(0) from exc
    except csv.Error as exc:
        raise IngestError(f"This is not a CSV file: {exc} in its header.") from exc
    raise IngestError("The file is empty.")


def _not_utf8(row_number: int) -> IngestError:
    # Decoding runs ahead of the CSV reader by a few KB, hence "near".
    where = f"near row {row_number}" if row_number > 1 else "near the start of the file"
    return IngestError(
        f"The file is not UTF-8 text (undecodable bytes {where}). "
        "Save it as “CSV UTF-8” and upload it again."
    )


def _chunk_jobs(reader, raw, template: ChunkJob) -> Iterator[tuple[ChunkJob, int]]:
    """Batches of data rows with the byte offset read so far; blank lines are skipped."""
    batch_size = settings.AUDIENCE_INGEST_BATCH_SIZE
    first_row_number, rows = 1, []
    try:
        for row in reader:
            if not any(row):
                continue
            rows.append(row)
            if len(rows) == batch_size:
                yield replace(template, rows=rows, first_row_number=first_row_number), raw.tell()
                first_row_number, rows = first_row_number + len(rows), []
    except UnicodeDecodeError as exc:
        raise _not_utf8(first_row_number + len(rows)) from exc
    except csv.Error as exc:
        row_number = first_row_number + len(rows)
        raise IngestError(f"This is not a valid CSV file: {exc} near row {row_number}.") from exc
    if rows:
        yield replace(template, rows=rows, first_row_number=first_row_number), raw.tell()


def _parser_processes(total_bytes: int) -> int:
    """How many parser processes to start: none for small files, and none inside a
    daemonic process (a Celery prefork child may not have children)."""
    processes = settings.AUDIENCE_INGEST_PROCESSES
    if (
        processes < 2
        or total_bytes < settings.AUDIENCE_INGEST_PARALLEL_MIN_BYTES
        or multiprocessing.current_process().daemon
    ):
        return 0
    return processes


def _parsed(jobs, processes: int) -> Iterator[tuple[object, int, int]]:
    """Each job's result in file order, with its row count and byte offset."""
    if not processes:
        for job, position in jobs:
            yield process_chunk(job), len(job.rows), position
        return
    # forkserver: children start from a clean process holding only the parser module,
    # not a fork of this one with its threads and database connection. Like spawn, each
    # child imports the parent's __main__ script, so entry points keep the __name__ guard.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["audiences.ingest_rows"])
    with context.Pool(processes) as pool:
        pending: deque[tuple[AsyncResult, int, int]] = deque()
        for job, position in jobs:
            pending.append((pool.apply_async(process_chunk, (job,)), len(job.rows), position))
            if len(pending) >= processes * CHUNKS_IN_FLIGHT_PER_PROCESS:
                result, row_count, position = pending.popleft()
                yield result.get(), row_count, position
        while pending:
            result, row_count, position = pending.popleft()
            yield result.get(), row_count, position


def _lead_columns() -> list[models.Field]:
    # All concrete columns; the stub of get_field also returns reverse relations and generic keys.
    return [
        cast(models.Field, Lead._meta.get_field(name))
        for name in ("audience", "organization", *LEAD_FIELDS)
    ]


def lead_copy_sql() -> str:
    """The COPY that loads `process_chunk`'s text into the lead table (bench/ingest.py's
    limit runs the same statement)."""
    quote = connection.ops.quote_name
    fields = _lead_columns()
    text_columns = [
        quote(f.column) for f in fields if isinstance(f, models.CharField | models.TextField)
    ]
    return (
        f"COPY {quote(Lead._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"FROM STDIN WITH (FORMAT csv, FORCE_NOT_NULL ({', '.join(text_columns)}))"
    )


def _copy_writer(db_thread: ThreadPoolExecutor):
    """COPY of COPY-ready CSV text from the parser into the lead table.

    Each batch is stored and committed by a helper thread on this same connection, so the
    database inserts and checks one batch while this thread parses the next; leaving the
    context waits for the batch. (Sending the data alone would not do: foreign keys are
    checked only once a COPY ends.)
    """
    sql = lead_copy_sql()

    def copy_batch(pg_connection, text: str) -> None:
        with pg_connection.cursor() as cursor, cursor.copy(sql) as copy:
            copy.write(text)

    @contextmanager
    def write(text: str):
        connection.ensure_connection()
        stored = db_thread.submit(copy_batch, connection.connection, text)
        try:
            yield
        finally:
            stored.result()

    return write


def _bulk_writer(audience: Audience):
    """The portable path (SQLite, the embedded shape): bulk inserts of the parsed tuples."""

    @contextmanager
    def write(lead_rows: list[tuple]):
        Lead.objects.bulk_create(
            Lead(
                audience_id=audience.pk,
                organization_id=audience.organization_id,
                **dict(zip(LEAD_FIELDS, lead_row, strict=True)),
            )
            for lead_row in lead_rows
        )
        yield

    return write


def _mark_duplicates(audience_id: int) -> None:
    """Later rows with a phone seen earlier in the file become duplicates, in one statement."""
    table = connection.ops.quote_name(Lead._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table}
            SET ingest_status = %s, reject_reason = 'same phone as row ' || dup.first_row
            FROM (
                SELECT id,
                       row_number() OVER phone_rows AS occurrence,
                       first_value(row_number) OVER phone_rows AS first_row
                FROM {table}
                WHERE audience_id = %s AND phone_e164 <> ''
                WINDOW phone_rows AS (PARTITION BY phone_e164 ORDER BY row_number)
            ) AS dup
            WHERE {table}.id = dup.id AND dup.occurrence > 1
            """,
            [Lead.IngestStatus.DUPLICATE, audience_id],
        )


def mark_ineligible_geo(lead_ids) -> int:
    """Meta blocked marketing to these leads' country (131049 to a US number) though ingest
    let them through: they are marked as ingest would have, so no later MARKETING send tries
    them again. Returns how many leads changed."""
    return (
        Lead.objects.filter(pk__in=lead_ids)
        .exclude(ingest_status=Lead.IngestStatus.INELIGIBLE_GEO)
        .update(ingest_status=Lead.IngestStatus.INELIGIBLE_GEO)
    )
