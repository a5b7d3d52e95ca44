"""Reads about audiences: counts per ingest status, ingest progress, rejected rows."""

import itertools
from collections.abc import Iterator

from django.db import connection
from django.db.models import CharField, Count, Func, Q

from setter.csvstream import line_writer

from .models import Audience, Lead

# Ingest statuses plus the limited-reporting flag, as counted on the audience.
COUNTED_STATUSES = (*Lead.IngestStatus.values, "limited_reporting")
REJECT_COLUMNS = (
    "row_number",
    "phone",
    "status",
    "reason",
    "external_id",
    "first_name",
    "last_name",
    "email",
)


def count_leads_by_status(audience_id: int) -> dict[str, int]:
    """Leads per ingest status in one scan; limited_reporting counts sendable (ok) leads only,
    the ones whose read metrics will be missing."""
    aggregates = {
        status: Count("id", filter=Q(ingest_status=status)) for status in Lead.IngestStatus.values
    }
    aggregates["limited_reporting"] = Count(
        "id", filter=Q(ingest_status=Lead.IngestStatus.OK, limited_reporting=True)
    )
    return Lead.objects.filter(audience_id=audience_id).aggregate(**aggregates)


def audience_counts(audience: Audience) -> dict[str, int]:
    return {status: getattr(audience, f"count_{status}") for status in COUNTED_STATUSES}


def audience_state(audience: Audience) -> dict:
    """What the admin's progress bar polls."""
    return {
        "id": audience.pk,
        "status": audience.status,
        "status_display": audience.get_status_display(),
        "error": audience.error,
        "progress": round(audience.progress * 100, 1),
        "processed_bytes": audience.processed_bytes,
        "total_bytes": audience.total_bytes,
        "total_rows": audience.total_rows,
        "counts": audience_counts(audience),
        "rejected": audience.total_rows - audience.count_ok,
    }


def rejected_leads_csv(audience: Audience) -> Iterator[str]:
    """Every row that is not ok, with its reason and the row's other columns, line by line."""
    leads = (
        Lead.objects.filter(audience=audience)
        .exclude(ingest_status=Lead.IngestStatus.OK)
        .order_by("row_number")
        .values_list(
            "row_number",
            "phone_raw",
            "ingest_status",
            "reject_reason",
            "external_id",
            "first_name",
            "last_name",
            "email",
            "variables",
        )
        .iterator(chunk_size=2000)
    )
    writer = line_writer()
    first = next(leads, None)
    # Every lead of an upload carries the same extra columns, in the file's order.
    variable_names = list(first[-1]) if first else []
    yield writer.writerow([*REJECT_COLUMNS, *variable_names])
    if first is None:
        return
    for *fields, variables in itertools.chain([first], leads):
        yield writer.writerow([*fields, *(variables.get(name, "") for name in variable_names)])


class _ObjectKeys(Func):
    """The keys of a JSON object column, one row each (nothing for a non-object)."""

    template = (
        "jsonb_object_keys(CASE WHEN jsonb_typeof(%(expressions)s) = 'object' "
        "THEN %(expressions)s ELSE '{}'::jsonb END)"
    )
    output_field = CharField()


def variable_names(leads) -> set[str]:
    """Every variable (CSV column beyond the lead fields, segment substitution tag) that at
    least one of these leads has: what a send's parameters may name.

    One DISTINCT over the JSON keys on PostgreSQL; the embedded SQLite reads the variables.
    """
    leads = leads.order_by()
    if connection.vendor == "postgresql":
        keys = leads.annotate(key=_ObjectKeys("variables"))
        return set(keys.values_list("key", flat=True).distinct())
    names: set[str] = set()
    for variables in leads.values_list("variables", flat=True).iterator(chunk_size=2000):
        if isinstance(variables, dict):
            names.update(variables)
    return names
