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
from django.db.models import F
from django.utils import timezone

from audiences import segments, statistics
from audiences.models import Audience, Lead

from . import local_time, services
from .eligibility import Eligible
from .models import Campaign, Send, SendRecipient, SendWave
from .rendering import MissingParameter, render_message, send_renderer
from .send_window import SendWindow, ZoneReading, zone_readings

logger = logging.getLogger(__name__)


class MaterializeResult(NamedTuple):
    send_id: int
    status: str
    recipient_count: int
    reason: str = ""


def _insert_sql(
    eligible: Eligible, send: Send, wave: SendWave | None = None, *, fresh: bool = False
):
    """The INSERT … SELECT that fills the send's recipient queue, idempotently; a local
    wave's rows carry its number and are not due before its instant.

    `fresh`: the send has no recipient row yet, and the caller holds its lock, so no row can
    conflict and the statement skips ON CONFLICT's check: its speculative insertion, a probe
    of the (send, phone) index before every row, took 15–22 % of a million-row
    materialization (issue 17.5). Should a row conflict after all, the statement fails and the
    transaction rolls back whole: the send stays pending for the next tick, which takes the
    checked path.
    """
    recipients, params = eligible.sql()
    now = timezone.now()
    columns = (
        "send_id, lead_id, phone_e164, limited_reporting, status, wamid, attempts, "
        "error_code, error_title, error_detail, skip_reason, claim_token, queued_at, updated_at, "
        "wave, next_attempt_at"
    )
    # A row the frequency cap holds is written skipped, with its reason, so it is counted.
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
        SendRecipient.SkipReason.FREQUENCY_CAP.label,
        now,
        now,
        wave.number if wave else 1,
        wave.scheduled_for if wave else None,
        *params,
    ]
    table = SendRecipient._meta.db_table
    if fresh:
        return f"INSERT INTO {table} ({columns}) {select}", params
    if connection.vendor == "postgresql":
        return (
            f"INSERT INTO {table} ({columns}) {select} ON CONFLICT (send_id, phone_e164) DO NOTHING"
        ), params
    return f"INSERT OR IGNORE INTO {table} ({columns}) {select}", params


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
        if send.scheduled_for < now - dt.timedelta(seconds=settings.SEND_MISSED_AFTER_SECONDS):
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
            count, reason = _fix_waves(send, eligible, now)
            return _finish(send, "materialize", count, reason, now)

        started = time.monotonic()
        statistics.analyze_unanalysed()
        # Rows already there (a send forced back to pending) plus the rows inserted: the
        # lock keeps anyone else from adding any, so this is the count a COUNT afterwards
        # would give, without reading the new rows back.
        existing = SendRecipient.objects.filter(send=send).count()
        sql, params = _insert_sql(eligible, send, fresh=not existing)
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


# --- Local-time waves (issue 16.1, campaigns.local_time) -------------------------------------


def _fix_waves(send: Send, eligible: Eligible, now: dt.datetime) -> tuple[int, str]:
    """The first wave of a local-time send is due: its waves are fixed from the eligible set
    now, and those due are materialized. Returns the recipients written and a reason for an
    empty send."""
    planned = local_time.plan(send, eligible)
    if not planned:
        return 0, "No recipients: nobody in the audience is eligible."
    for number, wave in enumerate(planned, start=1):
        SendWave.objects.create(
            send=send,
            kind=SendWave.Kind.LOCAL,
            number=number,
            scheduled_for=wave.at,
            zones=[share.zone for share in wave.zones],
            shifted_zones=list(wave.shifted_zones),
        )
    send.materialization_seconds = 0.0
    count = sum(
        _materialize_wave(send, wave, now)
        for wave in _due_waves(now).filter(send=send).order_by("number")
    )
    return count, ""


def _due_waves(now: dt.datetime):
    horizon = now + dt.timedelta(seconds=settings.SEND_MATERIALIZE_AHEAD_SECONDS)
    return SendWave.objects.filter(
        kind=SendWave.Kind.LOCAL, status=SendWave.Status.PENDING, scheduled_for__lte=horizon
    )


def _materialize_wave(send: Send, wave: SendWave, now: dt.datetime) -> int:
    """Write the wave's recipients: the send's eligible set at the wave's instant, of the
    wave's zones. A wave the system reached too late is missed instead."""
    late = now - wave.scheduled_for
    if late > dt.timedelta(seconds=settings.SEND_MISSED_AFTER_SECONDS):
        wave.status = SendWave.Status.MISSED
        wave.save(update_fields=["status"])
        logger.warning(
            "wave %s of send %s missed: materialized %s after its time",
            wave.number,
            send.pk,
            late,
            extra={"send_id": send.pk, "wave": wave.number},
        )
        return 0
    started = time.monotonic()
    eligible = Eligible.of_send(send, at=wave.scheduled_for)
    count = 0
    if not eligible.reason:
        zoned = eligible.with_zones(send.time_zone, tuple(wave.zones))
        sql, params = _insert_sql(zoned, send, wave)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            count = cursor.rowcount
        if wave.shifted_zones:
            moved = eligible.with_zones(send.time_zone, tuple(wave.shifted_zones))
            wave.shifted = moved.summary().messaged
    wave.status, wave.recipients = SendWave.Status.MATERIALIZED, count
    wave.materialization_seconds = time.monotonic() - started
    wave.save(update_fields=["status", "recipients", "shifted", "materialization_seconds"])
    send.materialization_seconds = (send.materialization_seconds or 0) + (
        wave.materialization_seconds
    )
    logger.info(
        "wave %s of send %s materialized: %s recipients",
        wave.number,
        send.pk,
        count,
        extra={"send_id": send.pk, "wave": wave.number, "recipients": count},
    )
    return count


def materialize_due_waves(now: dt.datetime | None = None) -> None:
    """Beat: the next waves of firing local-time sends, ~60 s before their instants."""
    now = now or timezone.now()
    due = _due_waves(now).filter(
        send__status__in=Send.FIRING_STATUSES,
        send__campaign__status__in=Campaign.ACTIVE_STATUSES,
    )
    for wave_id in list(due.values_list("pk", flat=True)):
        with transaction.atomic():
            wave = _due_waves(now).select_for_update(skip_locked=True).filter(pk=wave_id).first()
            if wave is None:  # another beat has it
                continue
            send = (
                Send.objects.select_for_update(of=("self",))
                .select_related("campaign")
                .get(pk=wave.send_id)
            )
            send.materialization_seconds = send.materialization_seconds or 0
            count = _materialize_wave(send, wave, now)
            Send.objects.filter(pk=send.pk).update(
                recipient_count=F("recipient_count") + count,
                materialization_seconds=send.materialization_seconds,
            )


def start_due_waves(now: dt.datetime | None = None) -> list[int]:
    """Materialized waves whose instant has come start: returns their sends to dispatch.
    The first wave starts with its send (campaigns.sends.start_due_sends)."""
    now = now or timezone.now()
    horizon = now + dt.timedelta(seconds=settings.DISPATCH_START_AHEAD_SECONDS)
    with transaction.atomic():
        waves = list(
            SendWave.objects.select_for_update(skip_locked=True).filter(
                kind=SendWave.Kind.LOCAL,
                status=SendWave.Status.MATERIALIZED,
                scheduled_for__lte=horizon,
                send__status=Send.Status.SENDING,
            )
        )
        for wave in waves:
            wave.status, wave.started_at = SendWave.Status.STARTED, now
        SendWave.objects.bulk_update(waves, ["status", "started_at"])
        send_ids = sorted({wave.send_id for wave in waves})
        Send.objects.filter(pk__in=send_ids).update(dispatch_heartbeat_at=now)
    return send_ids


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
    waves = tuple(local_time.plan(send, eligible)) if send.recipient_local_time else ()
    zones: list[ZoneReading] = []
    if window is not None:
        for wave in waves or (local_time.one_wave(send, eligible),):
            zones += zone_readings(window, wave.at, wave.messaged_by_zone())
    return SendPreview(
        count, limited, sample, held_by_cap=held_by_cap, zones=tuple(zones), waves=waves
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
