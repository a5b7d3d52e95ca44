"""A send's lifecycle on beat's side: sends start when due, are re-dispatched when their
dispatchers stopped beating, get a dead dispatcher's rows back, and end (completed, stopped or
cancelled) once no row is open. The dispatcher (campaigns.dispatcher) delivers; this module
decides when a send starts and ends."""

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from . import events, recipients, services
from .models import Campaign, Send, SendRecipient, SendWave

logger = logging.getLogger(__name__)

Status = SendRecipient.Status
SkipReason = SendRecipient.SkipReason


def start_due_sends(now: dt.datetime | None = None) -> list[int]:
    """Materialized sends about to fire become `sending`; returns their ids to dispatch."""
    now = now or timezone.now()
    horizon = now + dt.timedelta(seconds=settings.DISPATCH_START_AHEAD_SECONDS)
    started = []
    due = Send.objects.filter(
        status=Send.Status.MATERIALIZED,
        scheduled_for__lte=horizon,
        campaign__status__in=Campaign.ACTIVE_STATUSES,
    ).values_list("pk", "campaign_id")
    for send_id, campaign_id in due:
        with transaction.atomic():
            send = (
                Send.objects.select_for_update(of=("self",))
                .select_related("campaign", "template")
                .filter(pk=send_id, status=Send.Status.MATERIALIZED)
                .first()
            )
            if send is None:  # another beat started it
                continue
            # The body and components its recipients get, kept for their messages in the
            # recipient list.
            services.transition_send(
                send,
                "start",
                now=now,
                dispatch_heartbeat_at=now,
                template_body=send.template.body_text,
                template_components=send.template.components,
            )
        logger.info(
            "send %s of campaign %s started",
            send_id,
            campaign_id,
            extra={"campaign_id": campaign_id, "send_id": send_id},
        )
        started.append(send_id)
    return started


def stalled_send_ids(
    now: dt.datetime | None = None,
    *,
    send_id: int | None = None,
    stale_seconds: float | None = None,
) -> list[int]:
    """Sending sends of active campaigns with queued rows whose dispatchers stopped beating
    (a worker died, or the campaign was resumed after a pause): they need dispatchers again.

    Their heartbeat is renewed, so whoever called this is the one who re-dispatches them.
    `send_id` looks at that send only, `stale_seconds` replaces DISPATCH_STALE_SECONDS (both
    for `manage.py redispatch_send`)."""
    now = now or timezone.now()
    if stale_seconds is None:
        stale_seconds = settings.DISPATCH_STALE_SECONDS
    # Queued rows due now: a row waiting for its send window (or a long backoff) is not.
    due = SendRecipient.objects.filter(send=OuterRef("pk"), status=Status.QUEUED).filter(
        Q(next_attempt_at=None) | Q(next_attempt_at__lte=now)
    )
    sends = Send.objects.filter(
        Exists(due),
        status=Send.Status.SENDING,
        dispatch_heartbeat_at__lt=now - dt.timedelta(seconds=stale_seconds),
        campaign__status__in=Campaign.ACTIVE_STATUSES,
    )
    if send_id is not None:
        sends = sends.filter(pk=send_id)
    ids = list(sends.values_list("pk", flat=True))
    Send.objects.filter(pk__in=ids).update(dispatch_heartbeat_at=now)
    if ids:
        logger.info("sends %s had no live dispatcher: re-dispatched", ids, extra={"send_ids": ids})
    return ids


def recover_lost_recipients(now: dt.datetime | None = None, *, send_id: int | None = None) -> int:
    """Rows whose dispatcher died: claimed ones back to the queue, sending ones `unknown`
    (never resent; a later status webhook reconciles them). Returns how many became unknown."""
    requeued, lost = recipients.recover_expired(now, send_id=send_id)
    if requeued or lost:
        logger.info(
            "a lost dispatcher's recipients recovered: %s queued again, %s unknown",
            requeued,
            lost,
            extra={"requeued": requeued, "unknown": lost, "send_id": send_id},
        )
    return lost


def finish_sends(now: dt.datetime | None = None) -> None:
    """Sends with nothing left to do are completed (or ended with their campaign)."""
    for send_id in Send.objects.filter(status=Send.Status.SENDING).values_list("pk", flat=True):
        settle_send(send_id, now=now)


def _stop_reason(campaign: Campaign, now: dt.datetime) -> str:
    """The skip reason for what a send has not sent yet, when its campaign ended it."""
    if campaign.status == Campaign.Status.CANCELLED:
        return SkipReason.CANCELLED
    if campaign.status == Campaign.Status.STOPPED or (campaign.stop_at and campaign.stop_at <= now):
        return SkipReason.STOPPED
    return ""


def settle_send(send_id: int, *, now: dt.datetime | None = None) -> str:
    """Complete, stop or cancel a sending send when its campaign or its queue says so.

    Returns the send's status afterwards. A cancel, a stop or a passed stopAt skips every row
    not yet on the wire at once; the send ends when no row is left open (rows in flight get
    their real outcome from their dispatcher, or `unknown` once its lease lapses).
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
        reason = _stop_reason(campaign, now)
        waves = send.waves.filter(status__in=SendWave.UNFIRED_STATUSES)
        if reason:
            waves.update(status=SendWave.Status.CANCELLED)
            recipients.skip_unsent([send.pk], reason)
        if send.recipients.filter(status__in=SendRecipient.OPEN_STATUSES).exists():
            return send.status
        if waves.exists():  # a local-time send between its waves
            return send.status
        if reason == SkipReason.CANCELLED:
            return _end_send(send, "cancel", now)
        if reason == SkipReason.STOPPED:
            if campaign.status != Campaign.Status.STOPPED:
                services.transition_campaign(
                    campaign, "stop", reason="The campaign's stop time passed."
                )
            return _end_send(send, "stop", now)
        return _end_send(send, "complete", now)


def _end_send(send: Send, action: str, now) -> str:
    status = services.transition_send(send, action, now=now).status
    logger.info(
        "send %s of campaign %s ended: %s",
        send.pk,
        send.campaign_id,
        status,
        extra={"campaign_id": send.campaign_id, "send_id": send.pk, "status": status},
    )
    return status


def pause_automatically(send: Send, reason: str) -> None:
    """The engine pauses the send's campaign by itself: an error that would fail every
    recipient (template, token, account), or the quality guard. The marketer sees the reason
    on the send and the campaign, partners get `send.paused`; resuming is theirs to do."""
    message = f"Paused automatically: {reason}"
    with transaction.atomic():
        Send.objects.filter(pk=send.pk).update(status_reason=message)
        send.status_reason = message
        campaign = Campaign.objects.get(pk=send.campaign_id)
        if campaign.status in Campaign.ACTIVE_STATUSES:
            services.transition_campaign(campaign, "pause", reason=message)
            events.send_paused(send, reason)
    logger.warning(
        "send paused",
        extra={"campaign_id": send.campaign_id, "send_id": send.pk, "reason": reason},
    )
