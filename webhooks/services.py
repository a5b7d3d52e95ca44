"""Business rules of the inbound webhooks: audience filters for a send and lead events (both
take already-authenticated, shape-checked input and store everything or nothing), and the
count of Meta status reports refused.
"""

import datetime as dt
import hashlib
from dataclasses import dataclass, field

import orjson
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.text import capfirst

from audiences.models import LeadEvent
from campaigns.models import AudienceFilterEvent, Send
from setter.instants import in_supported_range
from setter.models import Organization
from setter.phones import canonical_or_normalized

from .exceptions import SendConflict, SendNotFound
from .models import RejectedStatusCount

# Seed 000: filters are taken until 5 minutes before the send fires.
FILTER_DEADLINE_BEFORE_SEND = dt.timedelta(minutes=5)
# Lead events dated later than now + this are refused: partner clocks drift a little, but an
# event from the future would silently satisfy a windowed event filter before it happened.
LEAD_EVENT_CLOCK_SKEW = dt.timedelta(minutes=5)

ACCEPTED = "accepted"
ALREADY_RECEIVED = "already_received"


@dataclass(frozen=True)
class FilterResult:
    status: str  # ACCEPTED or ALREADY_RECEIVED
    lead_count: int | None  # None on ALREADY_RECEIVED


@dataclass(frozen=True)
class LeadEventResult:
    accepted: int
    duplicates: int
    rejected: int
    rejects: list[dict] = field(default_factory=list)  # [{"index": 3, "reason": "…"}]


def filter_deadline(send: Send) -> dt.datetime:
    return send.scheduled_for - FILTER_DEADLINE_BEFORE_SEND


def filter_payload_hash(mode: str, leads: list[dict]) -> str:
    """The identity of a filter payload, for telling a replay from a new filter.

    An exact replay is the same mode and the same leads in the same order, each lead's
    externalId and phoneE164 exactly as sent. Key order, whitespace and keys other than those
    two do not count; campaignId and sendId do not either, since the hash is unique per send.
    """
    canonical = [mode, [[lead.get("externalId"), lead.get("phoneE164")] for lead in leads]]
    return hashlib.sha256(orjson.dumps(canonical)).hexdigest()


def record_audience_filter(
    *,
    organization: Organization,
    campaign_id: int,
    send_id: int,
    mode: str,
    leads: list[dict],
    now: dt.datetime | None = None,
) -> FilterResult:
    """Store a filter event for one of the organization's sends; the latest one counts.

    A replay of a recorded payload is already_received even after the deadline: a partner
    retrying a delivery whose answer it lost must not be told it failed.

    Raises SendNotFound (no such send in this organization's campaign) and SendConflict
    (not pending, filter off, or past the deadline).
    """
    now = now or timezone.now()
    payload_hash = filter_payload_hash(mode, leads)
    with transaction.atomic():
        # Locked so the materializer (which locks the send too) sees this filter or we see
        # that it has already run.
        send = (
            Send.objects.select_for_update(of=("self",))
            .filter(pk=send_id, campaign_id=campaign_id, campaign__organization=organization)
            .first()
        )
        if send is None:
            raise SendNotFound(f"Send {send_id} of campaign {campaign_id} was not found.")
        if send.filter_events.filter(payload_hash=payload_hash).exists():
            return FilterResult(ALREADY_RECEIVED, None)
        _check_send_takes_filters(send, now)
        external_ids, phones = _lead_keys(leads)
        try:
            with transaction.atomic():
                AudienceFilterEvent.objects.create(
                    send=send,
                    organization=organization,
                    mode=mode,
                    payload_hash=payload_hash,
                    external_ids=external_ids,
                    phones_e164=phones,
                    lead_count=len(leads),
                )
        except IntegrityError:
            # The unique (send, payload_hash) constraint is the guarantee where row locks
            # are not (SQLite): a concurrent twin got there first.
            return FilterResult(ALREADY_RECEIVED, None)
    return FilterResult(ACCEPTED, len(leads))


# The editor's own words for the toggle, read from the field it shows.
_FILTER_TOGGLE = (
    f"set “{capfirst(Send._meta.get_field('audience_filter_mode').verbose_name)}” to "
    f"“{Send.AudienceFilterMode.WEBHOOK_FILTERED.label}”"
)


def _check_send_takes_filters(send: Send, now: dt.datetime) -> None:
    if send.status != Send.Status.PENDING:
        raise SendConflict(
            f"Send {send.pk} is {send.get_status_display().lower()}, not pending: it takes no "
            "more audience filters.",
            code="send_not_pending",
        )
    if send.audience_filter_mode != Send.AudienceFilterMode.WEBHOOK_FILTERED:
        raise SendConflict(
            f"The audience filter of send {send.pk} is off: {_FILTER_TOGGLE} for this send in "
            "the campaign editor.",
            code="audience_filter_off",
        )
    deadline = filter_deadline(send)
    if now >= deadline:
        raise SendConflict(
            f"The filter deadline for send {send.pk} was "
            f"{deadline.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ} (5 minutes before it fires).",
            code="filter_deadline_passed",
        )


def _lead_keys(leads: list[dict]) -> tuple[list[str], list[str]]:
    """Distinct external ids and E.164 phones to match; a phone that cannot be a number
    could never match an audience lead, so it is left out."""
    region = settings.AUDIENCE_DEFAULT_REGION
    external_ids = dict.fromkeys(lead["externalId"] for lead in leads if lead.get("externalId"))
    phones = dict.fromkeys(
        phone
        for lead in leads
        if lead.get("phoneE164") and (phone := canonical_or_normalized(lead["phoneE164"], region))
    )
    return list(external_ids), list(phones)


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


_EVENT_TYPE_MAX_LENGTH = LeadEvent._meta.get_field("event_type").max_length


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


def record_rejected_statuses(by_field: dict[str, int]) -> None:
    """Add refused Meta status reports to their per-field totals, one upsert per field."""
    table = connection.ops.quote_name(RejectedStatusCount._meta.db_table)
    with connection.cursor() as cursor:
        for field_name, count in sorted(by_field.items()):
            # Concurrent deliveries add to the same row: the increment happens in SQL.
            cursor.execute(
                f"INSERT INTO {table} (field, count) VALUES (%s, %s) "
                f"ON CONFLICT (field) DO UPDATE SET count = {table}.count + excluded.count",
                [field_name, count],
            )
