"""The waves of a send at each recipient's local time (issue 16.1; campaigns.local_time plans
them): fixed from the send's eligible set when the first is due, each materialized ~60 s
before its own instant with the rules read then, and started at it.

Every recipient ends with a row, so with an outcome: a wave the system reached too late is
missed and writes its recipients skipped (local_time_passed); once no wave is left to come,
the leads that joined since the waves were fixed, in a zone the send has no wave for, are
written skipped (no_local_wave). The send's recipient_count and materialization_seconds are
its waves' sums (add_up).
"""

import datetime as dt
import logging
import time

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from . import local_time, services
from .eligibility import Eligible
from .models import Campaign, Send, SendRecipient, SendWave
from .recipient_sql import insert_eligible_sql

logger = logging.getLogger(__name__)

SkipReason = SendRecipient.SkipReason


def fix_waves(send: Send, eligible: Eligible, now: dt.datetime) -> str:
    """The first wave of a local-time send is due: its waves are fixed from the eligible set
    now, and those due are materialized. Returns a reason for an empty send; the send's
    counts are added up from its waves."""
    planned = local_time.plan(send, eligible)
    for number, wave in enumerate(planned, start=1):
        SendWave.objects.create(
            send=send,
            kind=SendWave.Kind.LOCAL,
            number=number,
            scheduled_for=wave.at,
            zones=[share.zone for share in wave.zones],
            shifted_zones=list(wave.shifted_zones),
        )
    for due in _due_waves(now).filter(send=send).order_by("number"):
        _materialize_wave(send, due, now)
    add_up(send)
    return "" if planned else "No recipients: nobody in the audience is eligible."


def add_up(send: Send) -> None:
    """The send's recipient count and materialization time are its local waves' sums, read
    from the waves as written (the callers save them with the send)."""
    totals = SendWave.objects.filter(send=send, kind=SendWave.Kind.LOCAL).aggregate(
        recipients=Coalesce(Sum("recipients"), 0), seconds=Sum("materialization_seconds")
    )
    send.recipient_count = totals["recipients"]
    send.materialization_seconds = totals["seconds"]


def _due_waves(now: dt.datetime):
    horizon = now + dt.timedelta(seconds=settings.SEND_MATERIALIZE_AHEAD_SECONDS)
    return SendWave.objects.filter(
        kind=SendWave.Kind.LOCAL, status=SendWave.Status.PENDING, scheduled_for__lte=horizon
    )


def _materialize_wave(send: Send, wave: SendWave, now: dt.datetime) -> None:
    """Write the wave's recipients: the send's eligible set at the wave's instant, of the
    wave's zones; queued, or skipped when the system reached the wave too late (it is missed).
    The last wave to come also writes the leads of zones with no wave, skipped.

    The shifted count is a second, index-served query of the shifted zones, on a DST day
    only: the zone is no column of the recipient row, so the INSERT's RETURNING could count
    by it only by joining every row written back to its lead."""
    started = time.monotonic()
    missed = services.too_late(wave.scheduled_for, now)
    eligible = Eligible.of_send(send, at=wave.scheduled_for)
    count = 0
    if not eligible.reason:
        zoned = eligible.with_zones(send.time_zone, tuple(wave.zones))
        count = _insert(zoned, send, wave, SkipReason.LOCAL_TIME_PASSED if missed else "")
        if wave.shifted_zones and not missed:
            moved = eligible.with_zones(send.time_zone, tuple(wave.shifted_zones))
            wave.shifted = moved.summary().messaged
        others = send.waves.filter(kind=SendWave.Kind.LOCAL).exclude(pk=wave.pk)
        if not others.filter(status=SendWave.Status.PENDING).exists():
            # Only once no wave is left to come: a phone with a lead in the zone of a wave
            # still to come is that wave's to message.
            waved = set(wave.zones)
            for zones in others.values_list("zones", flat=True):
                waved.update(zones)
            unwaved = eligible.with_zones(send.time_zone, tuple(sorted(waved)), outside=True)
            count += _insert(unwaved, send, wave, SkipReason.NO_LOCAL_WAVE)
    wave.status = SendWave.Status.MISSED if missed else SendWave.Status.MATERIALIZED
    wave.recipients = count
    wave.materialization_seconds = time.monotonic() - started
    wave.save(update_fields=["status", "recipients", "shifted", "materialization_seconds"])
    if missed:
        logger.warning(
            "wave %s of send %s missed: reached %s after its time, %s recipients skipped",
            wave.number,
            send.pk,
            now - wave.scheduled_for,
            count,
            extra={"send_id": send.pk, "wave": wave.number, "recipients": count},
        )
        return
    logger.info(
        "wave %s of send %s materialized: %s recipients",
        wave.number,
        send.pk,
        count,
        extra={"send_id": send.pk, "wave": wave.number, "recipients": count},
    )


def _insert(eligible: Eligible, send: Send, wave: SendWave, skip: str) -> int:
    sql, params = insert_eligible_sql(eligible, send, wave, skip=skip)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


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
            _materialize_wave(send, wave, now)
            add_up(send)
            send.save(update_fields=["recipient_count", "materialization_seconds"])


def start_due_local_waves(now: dt.datetime | None = None) -> list[int]:
    """Materialized local waves whose instant has come start: returns their sends to
    dispatch. The first wave starts with its send (campaigns.sends.start_due_sends)."""
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
