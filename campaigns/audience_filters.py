"""Audience filters for a send (seed 000): the rules a partner's include/exclude list meets
before the materializer applies the latest one. Input arrives authenticated and shape-checked
from the webhook; everything is stored or nothing.
"""

import datetime as dt
import hashlib
from dataclasses import dataclass

import orjson
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import capfirst
from rest_framework import exceptions, status

from setter.models import Organization
from setter.phones import canonical_or_normalized

from .models import AudienceFilterEvent, Send

# Seed 000: filters are taken until 5 minutes before the send fires.
FILTER_DEADLINE_BEFORE_SEND = dt.timedelta(minutes=5)

ACCEPTED = "accepted"
ALREADY_RECEIVED = "already_received"


# DRF exceptions, so the webhook answers them as they are: 404 not_found, 409 with the code.
class SendNotFound(exceptions.NotFound):
    default_code = "not_found"


class SendConflict(exceptions.APIException):
    """The send exists but cannot take a filter now; the code says why."""

    status_code = status.HTTP_409_CONFLICT


@dataclass(frozen=True)
class FilterResult:
    status: str  # ACCEPTED or ALREADY_RECEIVED
    lead_count: int | None  # None on ALREADY_RECEIVED


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
