"""The dispatcher: delivers a send's queued recipients through Meta at the allowed rate.

Safety before speed. A recipient is claimed (FOR UPDATE SKIP LOCKED) and marked `sending`
in a committed transaction before its call, so no two workers ever hold it and a worker
that dies mid-call leaves it `sending`; `recover_lost_recipients` turns such rows into
`unknown`, never back into `queued`: a message that may have left is never sent twice.
Every later write is conditional on the row's current status, so a status webhook that
overtakes our own bookkeeping is never undone.

Speed comes from many calls in flight per worker (a thread pool; Meta answers in
100–300 ms) paced by the shared rate limiter, and from claiming the next batch while the
current one is on the wire.
"""

import datetime as dt
import logging
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.db.models import F, Min
from django.utils import timezone

from audiences.models import Lead, OptOut
from messaging import errors
from messaging.client import WhatsAppClient
from messaging.models import Category
from messaging.ratelimit import get_rate_limiter
from webhooks.outbound import events as outbound_events

from . import services
from .models import Campaign, Send, SendRecipient
from .recipient_sql import update_recipients_from_rows
from .rendering import compile_parameters

logger = logging.getLogger(__name__)

ACTIVE_CAMPAIGN_STATUSES = (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING)
Status = SendRecipient.Status


@dataclass(frozen=True)
class Outcome:
    recipient_id: int
    kind: str  # sent | retry | requeue | failed | unknown
    at: dt.datetime | None = None  # when Meta answered
    wamid: str = ""
    error_code: str = ""
    error_title: str = ""
    error_detail: str = ""
    retry_at: dt.datetime | None = None
    opt_out_marketing: bool = False
    ineligible_geo: bool = False


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(settings.DISPATCH_CONCURRENCY, thread_name_prefix="dispatch")


@lru_cache(maxsize=1)
def _client() -> WhatsAppClient:
    return WhatsAppClient(pool_maxsize=settings.DISPATCH_CONCURRENCY)


# --- Beat: starting, recovering and finishing sends -----------------------------------------


def start_due_sends(now: dt.datetime | None = None) -> list[int]:
    """Materialized sends about to fire become `sending`; returns their ids to dispatch."""
    now = now or timezone.now()
    horizon = now + dt.timedelta(seconds=settings.DISPATCH_START_AHEAD_SECONDS)
    started = []
    due = Send.objects.filter(
        status=Send.Status.MATERIALIZED,
        scheduled_for__lte=horizon,
        campaign__status__in=ACTIVE_CAMPAIGN_STATUSES,
    ).values_list("pk", "campaign_id")
    for send_id, campaign_id in due:
        with transaction.atomic():
            claimed = Send.objects.filter(pk=send_id, status=Send.Status.MATERIALIZED).update(
                status=Send.Status.SENDING, started_at=now, dispatch_heartbeat_at=now
            )
            if not claimed:
                continue
            campaign = Campaign.objects.get(pk=campaign_id)
            if campaign.status == Campaign.Status.SCHEDULED:
                services.transition_campaign(campaign, "start_running")
            send = Send.objects.select_related("campaign").get(pk=send_id)
            outbound_events.status_changed(send, Send.Status.MATERIALIZED)
        started.append(send_id)
    return started


def stalled_send_ids(
    now: dt.datetime | None = None,
    *,
    send_id: int | None = None,
    stale_seconds: float | None = None,
) -> list[int]:
    """Sending sends of active campaigns whose dispatchers stopped beating (a worker died,
    or the campaign was resumed after a pause): they need dispatchers again.

    Their heartbeat is renewed, so whoever called this is the one who re-dispatches them.
    `send_id` looks at that send only, `stale_seconds` replaces DISPATCH_STALE_SECONDS (both
    for `manage.py redispatch_send`)."""
    now = now or timezone.now()
    if stale_seconds is None:
        stale_seconds = settings.DISPATCH_STALE_SECONDS
    sends = Send.objects.filter(
        status=Send.Status.SENDING,
        dispatch_heartbeat_at__lt=now - dt.timedelta(seconds=stale_seconds),
        campaign__status__in=ACTIVE_CAMPAIGN_STATUSES,
        recipients__status=Status.QUEUED,
    )
    if send_id is not None:
        sends = sends.filter(pk=send_id)
    ids = list(sends.distinct().values_list("pk", flat=True))
    Send.objects.filter(pk__in=ids).update(dispatch_heartbeat_at=now)
    return ids


def recover_lost_recipients(now: dt.datetime | None = None, *, send_id: int | None = None) -> int:
    """Recipients left `sending` by a dead worker become `unknown`: their message may have
    left, so they are never resent; a later status webhook reconciles them."""
    now = now or timezone.now()
    stale = now - dt.timedelta(seconds=settings.RECIPIENT_SENDING_STALE_SECONDS)
    lost = SendRecipient.objects.filter(status=Status.SENDING, updated_at__lt=stale)
    if send_id is not None:
        lost = lost.filter(send_id=send_id)
    return lost.update(status=Status.UNKNOWN, updated_at=now)


def finish_sends(now: dt.datetime | None = None) -> None:
    """Sends with nothing left to do are completed (or ended with their campaign)."""
    for send_id in Send.objects.filter(status=Send.Status.SENDING).values_list("pk", flat=True):
        settle_send(send_id, now=now)


def settle_send(send_id: int, *, now: dt.datetime | None = None) -> str:
    """Complete, stop or end a sending send when its campaign or its queue says so.

    Returns the send's status afterwards. Cancelled campaigns and a passed stopAt skip what
    is still queued; a send completes once nothing is queued or in flight.
    """
    now = now or timezone.now()
    with transaction.atomic():
        send = (
            Send.objects.select_for_update(of=("self",))
            .select_related("campaign")
            .filter(pk=send_id)
            .first()
        )
        if send is None or send.status != Send.Status.SENDING:
            return send.status if send else ""
        campaign = send.campaign
        if campaign.status == Campaign.Status.CANCELLED:
            _skip_queued(send, "Campaign cancelled before this message was sent.", now)
            return _end_send(send, Send.Status.CANCELLED, "Campaign cancelled.", now)
        if campaign.stop_at and campaign.stop_at <= now:
            _skip_queued(
                send, f"The campaign's stop time {campaign.stop_at:%Y-%m-%d %H:%M} UTC passed.", now
            )
        busy = send.recipients.filter(status__in=(Status.QUEUED, Status.SENDING)).exists()
        if busy:
            return send.status
        status = _end_send(send, Send.Status.COMPLETED, send.status_reason, now)
        if campaign.status == Campaign.Status.RUNNING:
            services.transition_campaign(campaign, "finish_send")
        return status


def _skip_queued(send: Send, reason: str, now) -> None:
    send.recipients.filter(status=Status.QUEUED).update(
        status=Status.SKIPPED, error_title=reason[:255], updated_at=now
    )


def _end_send(send: Send, status: str, reason: str, now) -> str:
    previous_status = send.status
    send.status, send.status_reason, send.completed_at = status, reason, now
    send.save(update_fields=["status", "status_reason", "completed_at"])
    outbound_events.status_changed(send, previous_status)
    logger.info(
        "send ended",
        extra={"campaign_id": send.campaign_id, "send_id": send.pk, "status": status},
    )
    return status


# --- The dispatch loop -------------------------------------------------------------------------


class _Context:
    """What every call of one dispatch slice shares."""

    def __init__(self, send: Send):
        campaign = send.campaign
        self.send = send
        self.number = campaign.whatsapp_number
        self.template = send.template
        self.render_parameters = compile_parameters(send.parameter_mapping)
        self.limits = [
            (f"send:{send.pk}", float(send.max_messages_per_second)),
            (f"number:{self.number.pk}", float(self.number.throughput_mps)),
        ]
        self.stop = threading.Event()
        self.pause_reason = ""


def dispatch_send(send_id: int, *, slice_seconds: float | None = None) -> bool:
    """Deliver queued recipients of a sending send for up to slice_seconds.

    Returns True when work remains and another slice should follow (the task re-enqueues
    itself rather than holding a worker for an hour-long send).
    """
    slice_seconds = slice_seconds or settings.DISPATCH_SLICE_SECONDS
    send = (
        Send.objects.select_related("campaign__whatsapp_number", "template")
        .filter(pk=send_id, status=Send.Status.SENDING)
        .first()
    )
    if send is None:
        return False
    lead_time = (send.scheduled_for - timezone.now()).total_seconds()
    if lead_time > 0:
        time.sleep(min(lead_time, settings.DISPATCH_START_AHEAD_SECONDS))
    ctx = _Context(send)
    deadline = time.monotonic() + slice_seconds
    batch_size = max(
        10, min(1000, int(send.max_messages_per_second * settings.DISPATCH_BATCH_SECONDS))
    )
    in_flight: deque = deque()
    more_work = True
    next_check = 0.0
    while True:
        if time.monotonic() >= next_check:
            next_check = time.monotonic() + 0.5
            if not ctx.stop.is_set() and not _may_continue(send_id):
                ctx.stop.set()
        claiming = not ctx.stop.is_set() and time.monotonic() < deadline and len(in_flight) < 2
        if claiming:
            batch = _claim_batch(send, batch_size)
            if batch:
                _heartbeat(send_id)
                in_flight.append(_submit(ctx, _drop_opted_out(send, batch)))
                continue
            if not in_flight:
                more_work = _wait_for_retries(send_id, deadline)
                if more_work and time.monotonic() < deadline:
                    continue
                break
        if not in_flight:
            more_work = not ctx.stop.is_set() and _has_queued(send_id)
            break
        futures = in_flight[0]
        done, pending = wait(futures, timeout=0.5, return_when=FIRST_COMPLETED)
        if not pending:
            in_flight.popleft()
            _record(send, [f.result() for f in futures])
    if ctx.pause_reason:
        _pause_for_send_level_error(send, ctx.pause_reason)
        return False
    settle_send(send_id)
    return more_work and not ctx.stop.is_set()


def _may_continue(send_id: int) -> bool:
    campaign_status, stop_at, send_status = (
        Send.objects.filter(pk=send_id)
        .values_list("campaign__status", "campaign__stop_at", "status")
        .get()
    )
    if send_status != Send.Status.SENDING or campaign_status not in ACTIVE_CAMPAIGN_STATUSES:
        return False
    return stop_at is None or stop_at > timezone.now()


def _heartbeat(send_id: int) -> None:
    Send.objects.filter(pk=send_id).update(dispatch_heartbeat_at=timezone.now())


def _has_queued(send_id: int) -> bool:
    return SendRecipient.objects.filter(send_id=send_id, status=Status.QUEUED).exists()


def _wait_for_retries(send_id: int, deadline: float) -> bool:
    """Nothing claimable now: sleep until the next retry is due (bounded), if any."""
    next_at = SendRecipient.objects.filter(send_id=send_id, status=Status.QUEUED).aggregate(
        at=Min("next_attempt_at")
    )["at"]
    if next_at is None:
        return _has_queued(send_id)
    pause = min((next_at - timezone.now()).total_seconds(), deadline - time.monotonic(), 1.0)
    if pause > 0:
        time.sleep(pause)
    return True


def _claim_batch(send: Send, size: int) -> list[SendRecipient]:
    now = timezone.now()
    with transaction.atomic():
        batch = list(
            SendRecipient.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("lead")
            .filter(send=send, status=Status.QUEUED)
            .exclude(next_attempt_at__gt=now)
            .order_by("id")[:size]
        )
        if batch:
            SendRecipient.objects.filter(pk__in=[r.pk for r in batch]).update(
                status=Status.SENDING, attempts=F("attempts") + 1, updated_at=now
            )
            for recipient in batch:
                recipient.attempts += 1
    return batch


def _drop_opted_out(send: Send, batch: list[SendRecipient]) -> list[SendRecipient]:
    """Honour a STOP that arrived after materialization: those recipients are skipped."""
    scopes = [OptOut.Scope.ALL] + (
        [OptOut.Scope.MARKETING] if send.category == Category.MARKETING else []
    )
    opted_out = set(
        OptOut.objects.filter(
            organization_id=send.campaign.organization_id,
            scope__in=scopes,
            phone_e164__in=[r.phone_e164 for r in batch],
        ).values_list("phone_e164", flat=True)
    )
    if not opted_out:
        return batch
    skipped = [r.pk for r in batch if r.phone_e164 in opted_out]
    SendRecipient.objects.filter(pk__in=skipped, status=Status.SENDING).update(
        status=Status.SKIPPED, error_title="Opted out before the send.", updated_at=timezone.now()
    )
    return [r for r in batch if r.phone_e164 not in opted_out]


def _submit(ctx: _Context, recipients: list[SendRecipient]) -> list:
    """Reserve a rate-limit slot for every recipient in one round trip (which also counts
    the waits for /metrics), then hand each to a thread that waits for its slot."""
    if not recipients:
        return []
    now = time.monotonic()
    waits = get_rate_limiter().reserve(ctx.limits, len(recipients))
    return [
        _pool().submit(_deliver, ctx, recipient, now + wait)
        for recipient, wait in zip(recipients, waits, strict=True)
    ]


def _deliver(ctx: _Context, recipient: SendRecipient, slot_at: float) -> Outcome:
    """One message: wait for its slot, call Meta, classify the answer. Never raises."""
    # A pause or a send-level error interrupts the wait: the slot is given up, not used.
    if ctx.stop.wait(max(0.0, slot_at - time.monotonic())):
        return Outcome(recipient.pk, "requeue")
    send = ctx.send
    try:
        result = _client().send_template(
            number=ctx.number,
            to=recipient.phone_e164,
            template_name=ctx.template.name,
            language=ctx.template.language,
            parameters=ctx.render_parameters(recipient.lead),
            category=send.category,
            callback_data=str(recipient.pk),
        )
        return Outcome(recipient.pk, "sent", at=timezone.now(), wamid=result.wamid)
    except errors.SendLevelError as error:
        ctx.pause_reason = ctx.pause_reason or error.marketer_message
        ctx.stop.set()
        return Outcome(recipient.pk, "requeue")
    except errors.TransientError as error:
        if error.may_have_been_sent:
            # The request reached Meta and no answer came back: it may have been sent.
            # Never risk a second message; a status webhook will tell what happened.
            return Outcome(recipient.pk, "unknown", error_title=str(error)[:255])
        return _retry(recipient, error)
    except errors.ThroughputLimited as error:
        # Slow the whole number down for a moment, then try this one again.
        get_rate_limiter().reserve(
            [(ctx.limits[1][0], 1 / settings.DISPATCH_THROUGHPUT_PENALTY_SECONDS)], record=False
        )
        return _retry(recipient, error)
    except errors.PairRateLimited as error:
        return _retry(recipient, error, minimum=settings.DISPATCH_PAIR_RATE_DELAY_SECONDS)
    except errors.RecipientPermanentError as error:
        return _failure(
            recipient,
            error,
            opt_out_marketing=error.opts_out_marketing,
            ineligible_geo=error.ineligible_geo,
        )
    except errors.WhatsAppError as error:
        return _retry(recipient, error)
    except Exception as error:  # a bug must not strand the recipient in `sending`
        logger.exception(
            "unexpected dispatch error",
            extra={
                "campaign_id": send.campaign_id,
                "send_id": send.pk,
                "recipient_id": recipient.pk,
            },
        )
        return _retry(recipient, error)


def _failure(recipient, error, opt_out_marketing=False, ineligible_geo=False) -> Outcome:
    return Outcome(
        recipient.pk,
        "failed",
        error_code=str(getattr(error, "code", "") or ""),
        error_title=(getattr(error, "title", "") or str(error))[:255],
        error_detail=str(getattr(error, "details", "") or ""),
        opt_out_marketing=opt_out_marketing,
        ineligible_geo=ineligible_geo,
    )


def _retry(recipient, error, minimum: float = 0.0) -> Outcome:
    if recipient.attempts >= settings.DISPATCH_MAX_ATTEMPTS:
        return _failure(recipient, error)
    delay = max(
        minimum, errors.backoff_delay(recipient.attempts, base=settings.DISPATCH_RETRY_BASE_SECONDS)
    )
    return Outcome(recipient.pk, "retry", retry_at=timezone.now() + dt.timedelta(seconds=delay))


# --- Recording outcomes ------------------------------------------------------------------------


def _record(send: Send, outcomes: list[Outcome]) -> None:
    now = timezone.now()
    by_kind: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_kind.setdefault(outcome.kind, []).append(outcome)
    table = SendRecipient._meta.db_table
    in_flight = f"{table}.status IN ('{Status.SENDING}', '{Status.UNKNOWN}')"
    with transaction.atomic():
        # A status webhook may already have moved the row past `sent`: keep its status.
        update_recipients_from_rows(
            ["id", "wamid", "at"],
            [(o.recipient_id, o.wamid, o.at) for o in by_kind.get("sent", [])],
            f"wamid = v.wamid, sent_at = COALESCE({table}.sent_at, v.at), updated_at = %s, "
            f"status = CASE WHEN {in_flight} THEN '{Status.SENT}' ELSE {table}.status END",
            "1 = 1",
            [now],
        )
        update_recipients_from_rows(
            ["id", "retry_at"],
            [(o.recipient_id, o.retry_at) for o in by_kind.get("retry", [])],
            f"status = '{Status.QUEUED}', next_attempt_at = v.retry_at, updated_at = %s",
            f"{table}.status = '{Status.SENDING}'",
            [now],
        )
        lost = [o.recipient_id for o in by_kind.get("unknown", [])]
        if lost:
            SendRecipient.objects.filter(pk__in=lost, status=Status.SENDING).update(
                status=Status.UNKNOWN, error_title="No answer from Meta.", updated_at=now
            )
        requeued = [o.recipient_id for o in by_kind.get("requeue", [])]
        if requeued:
            SendRecipient.objects.filter(pk__in=requeued, status=Status.SENDING).update(
                status=Status.QUEUED, attempts=F("attempts") - 1, updated_at=now
            )
        failed = by_kind.get("failed", [])
        update_recipients_from_rows(
            ["id", "code", "title", "detail"],
            [(o.recipient_id, o.error_code, o.error_title, o.error_detail) for o in failed],
            f"status = '{Status.FAILED}', error_code = v.code, error_title = v.title, "
            "error_detail = v.detail, failed_at = %s, updated_at = %s",
            in_flight,
            [now, now],
        )
        _opt_out_marketing(send, [o.recipient_id for o in failed if o.opt_out_marketing])
        _mark_ineligible_geo([o.recipient_id for o in failed if o.ineligible_geo])


def _opt_out_marketing(send: Send, recipient_ids: list[int]) -> None:
    """Meta's 131050 means the person stopped marketing messages: remember it."""
    if not recipient_ids:
        return
    phones = SendRecipient.objects.filter(pk__in=recipient_ids).values_list("phone_e164", flat=True)
    OptOut.objects.bulk_create(
        [
            OptOut(
                organization_id=send.campaign.organization_id,
                phone_e164=phone,
                scope=OptOut.Scope.MARKETING,
                source=OptOut.Source.META_ERROR,
            )
            for phone in phones
        ],
        ignore_conflicts=True,
    )


def _mark_ineligible_geo(recipient_ids: list[int]) -> None:
    """Meta blocked marketing to a US number (131049) that ingest let through: its lead is
    marked ineligible_geo so no later MARKETING send tries again."""
    if recipient_ids:
        lead_ids = SendRecipient.objects.filter(pk__in=recipient_ids).values("lead_id")
        Lead.objects.filter(pk__in=lead_ids).update(ingest_status=Lead.IngestStatus.INELIGIBLE_GEO)


def _pause_for_send_level_error(send: Send, reason: str) -> None:
    """An error that would fail every recipient (template, token, account) pauses the
    campaign with the reason for the marketer instead of burning through the audience."""
    message = f"Paused automatically: {reason}"
    Send.objects.filter(pk=send.pk).update(status_reason=message)
    campaign = Campaign.objects.get(pk=send.campaign_id)
    if campaign.status in ACTIVE_CAMPAIGN_STATUSES:
        services.transition_campaign(campaign, "pause", reason=message)
    logger.warning(
        "send paused",
        extra={"campaign_id": send.campaign_id, "send_id": send.pk, "reason": reason},
    )
