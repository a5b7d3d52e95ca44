"""The materializer: turns a send's eligible set (campaigns.eligibility) into its recipient rows.

One INSERT … SELECT per send does the whole job inside the database, so 100,000 leads cost
one round trip, and the send's status moves from pending to materialized in the same
transaction: a crash leaves the send pending and nothing half-written, and a second run
finds nothing to do.
"""

import datetime as dt
import logging
import time
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audiences import segments, statistics
from audiences.models import Audience, Lead

from . import local_time, services, waves
from .eligibility import Eligible
from .models import Campaign, Send, SendRecipient
from .recipient_sql import insert_eligible_sql
from .rendering import MissingParameter, render_message, send_renderer
from .send_window import SendWindow, ZoneReading, zone_readings

logger = logging.getLogger(__name__)


class MaterializeResult(NamedTuple):
    send_id: int
    status: str
    recipient_count: int
    reason: str = ""


def materialize_send(send_id: int, *, now: dt.datetime | None = None) -> MaterializeResult | None:
    """Fill the send's recipient queue once. None when another process holds or did it."""
    now = now or timezone.now()
    with transaction.atomic():
        send = (
            Send.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("campaign")
            .filter(pk=send_id, status=Send.Status.PENDING)
            .first()
        )
        if send is None:
            return None
        if send.campaign.status not in Campaign.ACTIVE_STATUSES:
            return MaterializeResult(send.pk, send.status, 0, "campaign is not scheduled")
        if services.too_late(send.scheduled_for, now):
            reason = (
                f"Not sent: the fire time {send.scheduled_for:%Y-%m-%d %H:%M:%S} UTC passed more "
                f"than {settings.SEND_MISSED_AFTER_SECONDS // 60} minutes before the system "
                "could materialize it (was it down?)."
            )
            result = _finish(send, "miss", 0, reason, now)
            logger.warning(
                "send %s of campaign %s missed: %s",
                send.pk,
                send.campaign_id,
                reason,
                extra={"campaign_id": send.campaign_id, "send_id": send.pk},
            )
            return result

        eligible = Eligible.of_send(send)
        if eligible.reason:
            return _finish(send, "materialize", 0, eligible.reason, now)
        if send.recipient_local_time:
            reason = waves.fix_waves(send, eligible, now)
            return _finish(send, "materialize", send.recipient_count, reason, now)

        started = time.monotonic()
        statistics.analyze_unanalysed()
        # Rows already there (a send forced back to pending) plus the rows inserted: the
        # lock keeps anyone else from adding any, so this is the count a COUNT afterwards
        # would give, without reading the new rows back.
        existing = SendRecipient.objects.filter(send=send).count()
        sql, params = insert_eligible_sql(eligible, send, fresh=not existing)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            count = existing + cursor.rowcount
        segments.refresh_sizes_after_commit(
            send.campaign.audiences.filter(source=Audience.Source.DYNAMIC).values_list(
                "pk", flat=True
            )
        )
        send.materialization_seconds = time.monotonic() - started
        result = _finish(send, "materialize", count, "", now)
    logger.info(
        "send %s of campaign %s materialized: %s recipients",
        send_id,
        send.campaign_id,
        count,
        extra={"campaign_id": send.campaign_id, "send_id": send_id, "recipients": count},
    )
    return result


def _finish(send: Send, action: str, count: int, reason: str, now) -> MaterializeResult:
    services.transition_send(
        send,
        action,
        reason=reason,
        now=now,
        recipient_count=count,
        materialization_seconds=send.materialization_seconds,
    )
    return MaterializeResult(send.pk, send.status, count, reason)


class PreviewMessage(NamedTuple):
    phone_e164: str
    parameters: list[str]
    text: str
    skipped: str = ""  # why the dispatcher would skip this recipient instead of sending


class SendPreview(NamedTuple):
    recipient_count: int
    limited_reporting_count: int
    sample: list[PreviewMessage]
    reason: str = ""
    held_by_cap: int = 0  # eligible phones the frequency cap keeps from this send
    # Under a send window: per recipient zone, when they read it (issue 16.2).
    zones: tuple[ZoneReading, ...] = ()
    # A send at each recipient's local time: its waves (issue 16.1).
    waves: tuple[local_time.PlannedWave, ...] = ()

    @property
    def held_by_window(self) -> int:
        return sum(z.recipients for z in self.zones if z.held)


def preview_send(send: Send, *, sample_size: int = 10) -> SendPreview:
    """Who the send would reach if it materialized now, and what they would read.

    The dry run: the materializer's own eligible set (campaigns.eligibility) as a SELECT, so
    the preview cannot drift from what firing would do. It writes nothing and calls no one.
    """
    eligible = Eligible.of_send(send)
    if eligible.reason:
        return SendPreview(0, 0, [], eligible.reason)
    statistics.analyze_unanalysed()
    count, limited, held_by_cap = eligible.summary()
    lead_ids = eligible.first_lead_ids(sample_size)
    leads = Lead.objects.in_bulk(lead_ids)
    render_parameters = send_renderer(send)
    sample = []
    for lead_id in lead_ids:
        lead = leads[lead_id]
        try:
            parameters = render_parameters(lead)
        except MissingParameter as missing:
            sample.append(PreviewMessage(lead.phone_e164, [], "", f"missing_parameter: {missing}"))
            continue
        text = render_message(send.template.body_text, send.template.parameter_slots, parameters)
        sample.append(PreviewMessage(lead.phone_e164, parameters, text))
    window = SendWindow.of(send.campaign)
    planned = tuple(local_time.plan(send, eligible)) if send.recipient_local_time else ()
    zones: list[ZoneReading] = []
    if window is not None:
        for wave in planned or (local_time.one_wave(send, eligible),):
            zones += zone_readings(window, wave.at, wave.messaged_by_zone())
    return SendPreview(
        count, limited, sample, held_by_cap=held_by_cap, zones=tuple(zones), waves=planned
    )


def due_send_ids(now: dt.datetime | None = None) -> list[int]:
    """Pending sends of active campaigns whose materialization time has come."""
    now = now or timezone.now()
    horizon = now + dt.timedelta(seconds=settings.SEND_MATERIALIZE_AHEAD_SECONDS)
    return list(
        Send.objects.filter(
            status=Send.Status.PENDING,
            scheduled_for__lte=horizon,
            campaign__status__in=Campaign.ACTIVE_STATUSES,
        )
        .order_by("scheduled_for")
        .values_list("pk", flat=True)
    )


def materialize_due_sends(now: dt.datetime | None = None) -> list[MaterializeResult]:
    """Beat's entry point: materialize every due send; racing beats each claim different ones."""
    results = []
    for send_id in due_send_ids(now):
        result = materialize_send(send_id, now=now)
        if result is not None:
            results.append(result)
    return results
