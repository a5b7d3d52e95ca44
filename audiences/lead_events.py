"""Lead events (seed 001): per-phone events a send's event filter reads, deduplicated on
(phone, eventType, occurredAt). Input arrives authenticated and shape-checked from the
webhook; bad rows are reported, not fatal.
"""

import datetime as dt
from dataclasses import dataclass, field
from typing import cast

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from setter.instants import in_supported_range
from setter.models import Organization
from setter.phones import canonical_or_normalized

from .models import LeadEvent

# Lead events dated later than now + this are refused: partner clocks drift a little, but an
# event from the future would silently satisfy a windowed event filter before it happened.
LEAD_EVENT_CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class LeadEventResult:
    accepted: int
    duplicates: int
    rejected: int
    rejects: list[dict] = field(default_factory=list)  # [{"index": 3, "reason": "…"}]


def record_lead_events(
    *, organization: Organization, events: list, now: dt.datetime | None = None
) -> LeadEventResult:
    """Store the organization's new lead events; bad rows are reported, not fatal.

    A (phone, eventType, occurredAt) already stored, or seen earlier in this call, is a
    duplicate and dropped. occurredAt values are compared as instants, whatever their offset.
    """
    now = now or timezone.now()
    latest_allowed = now + LEAD_EVENT_CLOCK_SKEW
    region = settings.AUDIENCE_DEFAULT_REGION
    rows: dict[tuple, None] = {}
    rejects = []
    seen_twice = 0
    for index, event in enumerate(events):
        try:
            row = _lead_event_row(event, region, latest_allowed)
        except ValueError as exc:
            rejects.append({"index": index, "reason": str(exc)})
            continue
        if row in rows:
            seen_twice += 1
        else:
            rows[row] = None
    with transaction.atomic():
        inserted = _insert_new_lead_events(organization, list(rows), now)
    return LeadEventResult(
        accepted=inserted,
        duplicates=seen_twice + len(rows) - inserted,
        rejected=len(rejects),
        rejects=rejects,
    )


# A CharField's, so an int; the stub of get_field cannot tell which field it returns.
_EVENT_TYPE_MAX_LENGTH = cast(int, LeadEvent._meta.get_field("event_type").max_length)


def _lead_event_row(event, region: str, latest_allowed: dt.datetime) -> tuple:
    """(phone_e164, event_type, occurred_at in UTC), or ValueError with the reason."""
    if not isinstance(event, dict):
        raise ValueError("Expected an object with phoneE164, eventType and occurredAt.")
    raw_phone = event.get("phoneE164")
    event_type = event.get("eventType")
    raw_occurred_at = event.get("occurredAt")
    for name, value in (
        ("phoneE164", raw_phone),
        ("eventType", event_type),
        ("occurredAt", raw_occurred_at),
    ):
        if value is None or value == "":
            raise ValueError(f"{name} is missing.")
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string.")
    # The loop above refused anything but strings; this tells the type checker.
    assert isinstance(raw_phone, str) and isinstance(event_type, str)
    assert isinstance(raw_occurred_at, str)
    phone = canonical_or_normalized(raw_phone, region)
    if not phone:
        raise ValueError(f"phoneE164 is not a valid phone number: {raw_phone[:40]!r}.")
    if len(event_type) > _EVENT_TYPE_MAX_LENGTH:
        raise ValueError(f"eventType is longer than {_EVENT_TYPE_MAX_LENGTH} characters.")
    try:
        occurred_at = dt.datetime.fromisoformat(raw_occurred_at)
    except ValueError:
        raise ValueError(
            f"occurredAt is not an ISO 8601 date-time: {raw_occurred_at[:40]!r}."
        ) from None
    if occurred_at.tzinfo is None:
        raise ValueError("occurredAt needs a UTC offset, e.g. 2026-05-17T18:30:00Z.")
    if not in_supported_range(occurred_at):
        raise ValueError("occurredAt is outside the years 1970–9000.")
    if occurred_at > latest_allowed:
        raise ValueError("occurredAt is in the future.")
    return phone, event_type, occurred_at.astimezone(dt.UTC)


def _insert_new_lead_events(organization: Organization, rows: list[tuple], now) -> int:
    """Insert the rows not stored yet; returns how many were new. No per-row statements."""
    if not rows:
        return 0
    table = connection.ops.quote_name(LeadEvent._meta.db_table)
    columns = ("organization_id", "received_at", "phone_e164", "event_type", "occurred_at")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement whatever the batch size: three array parameters, unnested.
            phones, event_types, occurred_ats = (list(column) for column in zip(*rows, strict=True))
            cursor.execute(
                f"WITH new AS (INSERT INTO {table} ({', '.join(columns)}) "
                "SELECT %s, %s, u.phone, u.event_type, u.occurred_at "
                "FROM unnest(%s::text[], %s::text[], %s::timestamptz[]) "
                "AS u(phone, event_type, occurred_at) "
                "ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) FROM new",
                [organization.pk, now, phones, event_types, occurred_ats],
            )
            return cursor.fetchone()[0]
        # SQLite (the embedded shape): multi-row VALUES within its parameter cap.
        batch_size = max(1, connection.ops.bulk_batch_size(columns, rows))
        placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
        inserted = 0
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES {', '.join([placeholders] * len(batch))} "
                "ON CONFLICT DO NOTHING RETURNING id",
                [value for row in batch for value in (organization.pk, now, *row)],
            )
            inserted += len(cursor.fetchall())
        return inserted
