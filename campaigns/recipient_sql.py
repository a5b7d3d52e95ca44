"""Bulk writes to the recipient queue: per-row values, one statement, one round trip."""

import datetime as dt
from dataclasses import replace

import orjson
from django.db import connection
from django.utils import timezone

from .eligibility import Eligible
from .models import Send, SendRecipient, SendWave

TABLE = SendRecipient._meta.db_table
# A JSON column's value from a VALUES column of JSON text: PostgreSQL types that column as
# text and will not assign it to jsonb uncast; SQLite keeps JSON as text.
JSON_VALUE = "CAST({} AS jsonb)" if connection.vendor == "postgresql" else "{}"


def insert_eligible_sql(
    eligible: Eligible,
    send: Send,
    wave: SendWave | None = None,
    *,
    fresh: bool = False,
    skip: str = "",
) -> tuple[str, list]:
    """The INSERT … SELECT that fills the send's recipient queue from its eligible set,
    idempotently; a local wave's rows carry its number and are not due before its instant.
    A row the frequency cap holds is written skipped, with its reason, so it is counted.

    `skip`: a SkipReason every row is written skipped with instead (a local wave reached too
    late, leads of zones the send has no wave for), so those recipients have an outcome too.

    `fresh`: the send has no recipient row yet, and the caller holds its lock, so no row can
    conflict and the statement skips ON CONFLICT's check: its speculative insertion, a probe
    of the (send, phone) index before every row, took 15–22 % of a million-row
    materialization (issue 17.5). Should a row conflict after all, the statement fails and the
    transaction rolls back whole: the send stays pending for the next tick, which takes the
    checked path.
    """
    if skip:
        # Every row is skipped anyway: the cap's aggregate would decide nothing.
        eligible = replace(eligible, cap=None)
    recipients, params = eligible.sql()
    if skip:
        recipients = (
            f"SELECT e.id, e.phone_e164, e.limited_reporting, %s AS held FROM ({recipients}) e"
        )
        params = [skip, *params]
    now = timezone.now()
    columns = (
        "send_id, lead_id, phone_e164, limited_reporting, status, wamid, attempts, "
        "error_code, error_title, error_detail, skip_reason, claim_token, queued_at, updated_at, "
        "wave, next_attempt_at"
    )
    select = (
        "SELECT %s, r.id, r.phone_e164, r.limited_reporting, "
        "CASE WHEN r.held = '' THEN %s ELSE %s END, '', 0, '', "
        "CASE WHEN r.held = '' THEN '' ELSE %s END, '', r.held, '', %s, %s, %s, %s "
        f"FROM ({recipients}) r"
    )
    params = [
        send.pk,
        SendRecipient.Status.QUEUED,
        SendRecipient.Status.SKIPPED,
        SendRecipient.SkipReason(skip or SendRecipient.SkipReason.FREQUENCY_CAP).label,
        now,
        now,
        wave.number if wave else 1,
        wave.scheduled_for if wave else None,
        *params,
    ]
    if fresh:
        return f"INSERT INTO {TABLE} ({columns}) {select}", params
    if connection.vendor == "postgresql":
        return (
            f"INSERT INTO {TABLE} ({columns}) {select} ON CONFLICT (send_id, phone_e164) DO NOTHING"
        ), params
    return f"INSERT OR IGNORE INTO {TABLE} ({columns}) {select}", params


def update_recipients_from_rows(
    columns, rows, assignments, condition, params=(), *, returning=False
):
    """UPDATE the recipient table joined to a list of rows (`v`) whose first column is the id.

    `assignments` and `condition` are SQL over the table and `v` (the rows); they may use
    %s placeholders, filled from params in order. Conditions make writes monotonic: a row
    that moved on since it was read is left alone. Returns the number of rows changed, or
    with `returning` their ids.
    """
    if not rows:
        return set() if returning else 0
    if connection.vendor == "postgresql":
        source, values = _json_rows(columns, rows)
    else:
        source, values = _values(columns, rows)
    sql = (
        f"WITH v({', '.join(columns)}) AS ({source}) "
        f"UPDATE {TABLE} SET {assignments} FROM v WHERE {TABLE}.id = v.id AND {condition}"
    )
    if returning:
        sql += f" RETURNING {TABLE}.id"
    values += [_adapt(p) for p in params]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return {row[0] for row in cursor.fetchall()} if returning else cursor.rowcount


def _json_rows(columns, rows) -> tuple[str, list]:
    """PostgreSQL: the rows as one JSON array of arrays, read back column by column with its
    SQL type. A batch is one parameter, serialised by orjson in one call: neither a
    placeholder per value nor an array element per value for psycopg's client-side
    conversion to quote (issue 17.2)."""
    types = [_sql_type([row[i] for row in rows]) for i in range(len(columns))]
    fields = ", ".join(f"(r->>{i})::{sql_type}" for i, sql_type in enumerate(types))
    return f"SELECT {fields} FROM json_array_elements(%s::json) AS r", [orjson.dumps(rows).decode()]


def _sql_type(values: list) -> str:
    """The SQL type of a column's values, from the first that is not None. A column of only
    None is text, as a VALUES column of NULLs is."""
    first = next((value for value in values if value is not None), None)
    if isinstance(first, bool):
        return "boolean"
    if isinstance(first, int):
        return "bigint"
    if isinstance(first, dt.datetime):
        return "timestamptz"
    return "text"


def _values(columns, rows) -> tuple[str, list]:
    """SQLite (the embedded default): a VALUES list, one placeholder per value."""
    placeholders = ", ".join("(" + ", ".join(["%s"] * len(columns)) + ")" for _ in rows)
    return f"VALUES {placeholders}", [_adapt(value) for row in rows for value in row]


def _adapt(value):
    # Raw SQL bypasses field adaptation: store datetimes exactly as the ORM would.
    if isinstance(value, dt.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value
