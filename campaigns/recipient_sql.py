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
    """UPDATE the recipient table joined to a list of rows (`v`) whose first column is the id.

    `assignments` and `condition` are SQL over the table and `v` (the rows); they may use
    %s placeholders, filled from params in order. Conditions make writes monotonic: a row
    that moved on since it was read is left alone. Returns the number of rows changed, or
    with `returning` their ids.
    """
    if not rows:
        return set() if returning else 0
    if connection.vendor == "postgresql":
        source, values = _unnest(columns, rows)
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


def _unnest(columns, rows) -> tuple[str, list]:
    """PostgreSQL: one array per column, unnested side by side. A batch of 1,000 rows of
    three columns is three parameters rather than 3,000 placeholders, each quoted apart by the
    client-side conversion and parsed apart by the server (issue 17.2)."""
    arrays = [[_adapt(value) for value in column] for column in zip(*rows, strict=True)]
    typed = ", ".join(f"%s::{_array_type(array)}" for array in arrays)
    return f"SELECT * FROM unnest({typed})", arrays


def _array_type(values: list) -> str:
    """The SQL array type of a column's values, from the first that is not None. A column of
    only None is text, as a VALUES column of NULLs is."""
    first = next((value for value in values if value is not None), None)
    if isinstance(first, bool):
        return "boolean[]"
    if isinstance(first, int):
        return "bigint[]"
    if isinstance(first, dt.datetime):
        return "timestamptz[]"
    return "text[]"


def _values(columns, rows) -> tuple[str, list]:
    """SQLite (the embedded default): a VALUES list, one placeholder per value."""
    placeholders = ", ".join("(" + ", ".join(["%s"] * len(columns)) + ")" for _ in rows)
    return f"VALUES {placeholders}", [_adapt(value) for row in rows for value in row]


def _adapt(value):
    # Raw SQL bypasses field adaptation: store datetimes exactly as the ORM would.
    if isinstance(value, dt.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value
