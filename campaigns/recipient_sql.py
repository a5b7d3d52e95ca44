"""Bulk writes to the recipient queue: per-row values, one statement, one round trip."""

import datetime as dt

from django.db import connection

from .models import SendRecipient

TABLE = SendRecipient._meta.db_table
# A JSON column's value from a VALUES column of JSON text: PostgreSQL types that column as
# text and will not assign it to jsonb uncast; SQLite keeps JSON as text.
JSON_VALUE = "CAST({} AS jsonb)" if connection.vendor == "postgresql" else "{}"


def update_recipients_from_rows(
    columns, rows, assignments, condition, params=(), *, returning=False
):
    """UPDATE the recipient table joined to a VALUES list whose first column is the id.

    `assignments` and `condition` are SQL over the table and `v` (the rows); they may use
    %s placeholders, filled from params in order. Conditions make writes monotonic: a row
    that moved on since it was read is left alone. Returns the number of rows changed, or
    with `returning` their ids.
    """
    if not rows:
        return set() if returning else 0
    placeholders = ", ".join("(" + ", ".join(["%s"] * len(columns)) + ")" for _ in rows)
    sql = (
        f"WITH v({', '.join(columns)}) AS (VALUES {placeholders}) "
        f"UPDATE {TABLE} SET {assignments} FROM v WHERE {TABLE}.id = v.id AND {condition}"
    )
    if returning:
        sql += f" RETURNING {TABLE}.id"
    values = [_adapt(value) for row in rows for value in row] + [_adapt(p) for p in params]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return {row[0] for row in cursor.fetchall()} if returning else cursor.rowcount


def _adapt(value):
    # Raw SQL bypasses field adaptation: store datetimes exactly as the ORM would.
    if isinstance(value, dt.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value
