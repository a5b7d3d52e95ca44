"""Retry a completed send's failed recipients only (issue 15.2): one service behind the
admin's "Retry failed" page and `POST /api/v1/campaigns/{id}/sends/{sendId}/retry`.

A retry is a wave (SendWave) at a time the marketer picks. Until then nothing moves: the
campaign waits as scheduled. At that time the engine's tick (start_due_retry_waves) takes the
send's failed rows whose failure class is retried (messaging.errors.RetryClass: transient
and send-level failures by default; a recipient-permanent class only when the marketer
included it), keeps those the send would still reach at that instant — the eligibility rule
of campaigns.eligibility, so opt-outs, audience changes, filters and the frequency cap since
the first wave are honoured — and queues them again; the send dispatches them at its own
rate like its first wave. A recipient that was messaged (sent, delivered, read) or may have
been (unknown) is never a candidate: only `failed` rows are.
"""

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from messaging.errors import RetryClass
from setter.instants import in_supported_range

from . import recipients, services
from .eligibility import Eligible
from .models import Campaign, Send, SendRecipient, SendWave

logger = logging.getLogger(__name__)

# A time "now" as the marketer picked it reaches the server a moment later.
PAST_LEEWAY = dt.timedelta(minutes=1)
RETRIABLE_CAMPAIGN_STATUSES = (
    Campaign.Status.SCHEDULED,
    Campaign.Status.RUNNING,
    Campaign.Status.PAUSED,
    Campaign.Status.COMPLETED,
)


class RetryRefused(ValidationError):
    """The retry cannot be scheduled as asked; nothing changed. `field` names the input."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class FailureClassCount:
    retry_class: str
    count: int
    retried_by_default: bool

    @property
    def label(self) -> str:
        return RetryClass.LABELS[self.retry_class]

    @property
    def warning(self) -> str:
        return RetryClass.WARNINGS.get(self.retry_class, "")


def failure_classes(send: Send) -> list[FailureClassCount]:
    """The send's failed recipients by retry class (one GROUP BY over its error codes),
    every class listed, in RetryClass order: what the retry form offers."""
    counts = dict.fromkeys((*RetryClass.RETRIED_BY_DEFAULT, *RetryClass.INCLUDABLE), 0)
    for code, n in _failed_by_code(send):
        counts[RetryClass.of(code)] += n
    return [
        FailureClassCount(name, n, name in RetryClass.RETRIED_BY_DEFAULT)
        for name, n in counts.items()
    ]


def _failed_by_code(send: Send) -> list[tuple[str, int]]:
    return list(
        SendRecipient.objects.filter(send=send, status=SendRecipient.Status.FAILED)
        .order_by()
        .values_list("error_code")
        .annotate(n=Count("id"))
    )


def _retried_codes(send: Send, include: tuple[str, ...]) -> list[str]:
    classes = {*RetryClass.RETRIED_BY_DEFAULT, *include}
    return [code for code, _ in _failed_by_code(send) if RetryClass.of(code) in classes]


def retry_failed(
    send: Send,
    *,
    at: dt.datetime,
    include: tuple[str, ...] | list[str] = (),
    requested_by: str = "",
    now: dt.datetime | None = None,
) -> SendWave:
    """Schedule a retry wave of the send's failed recipients at `at`, or raise RetryRefused
    and change nothing. `include`: recipient-permanent classes (RetryClass.INCLUDABLE) to
    retry as well, each a conscious choice. A completed campaign is scheduled again until the
    wave has run."""
    now = now or timezone.now()
    include = tuple(dict.fromkeys(include))
    for index, name in enumerate(include):
        if name not in RetryClass.INCLUDABLE:
            choices = ", ".join(RetryClass.INCLUDABLE)
            raise RetryRefused(
                f"include[{index}]", RetryClass.NOT_INCLUDABLE.format(input=name, choices=choices)
            )
    if timezone.is_naive(at) or not in_supported_range(at):
        raise RetryRefused("at", "Give the time with its UTC offset, e.g. 2026-12-03T10:00:00Z.")
    if at < now - PAST_LEEWAY:
        raise RetryRefused("at", "The retry time has passed: pick a time from now on.")
    at = max(at, now)
    with transaction.atomic():
        locked = (
            Send.objects.select_for_update(of=("self",)).select_related("campaign").get(pk=send.pk)
        )
        campaign = locked.campaign
        _check_retriable(locked, campaign, at)
        if not _retried_codes(locked, include):
            raise RetryRefused("", _nothing_to_retry(locked, include))
        number = 1 + max(locked.waves.values_list("number", flat=True), default=1)
        wave = SendWave.objects.create(
            send=locked,
            number=number,
            scheduled_for=at,
            include=list(include),
            requested_by=requested_by,
        )
        if campaign.status == Campaign.Status.COMPLETED:
            services.transition_campaign(
                campaign,
                "reopen",
                reason=f"Failed recipients of a send are retried at {at:%Y-%m-%d %H:%M} UTC.",
            )
    logger.info(
        "retry of send %s scheduled",
        send.pk,
        extra={"send_id": send.pk, "wave": number, "at": at.isoformat(), "include": include},
    )
    return wave


def _check_retriable(send: Send, campaign: Campaign, at: dt.datetime) -> None:
    if send.status != Send.Status.COMPLETED:
        raise RetryRefused(
            "",
            f"Only a completed send's failures can be retried; this send is "
            f"{send.get_status_display().lower()}.",
        )
    if campaign.status not in RETRIABLE_CAMPAIGN_STATUSES:
        raise RetryRefused(
            "", f"The campaign is {campaign.get_status_display().lower()}: it sends nothing more."
        )
    if send.recipients_purged_at:
        raise RetryRefused("", "This send's recipients were purged by the retention policy.")
    pending = send.waves.filter(kind=SendWave.Kind.RETRY, status=SendWave.Status.PENDING).first()
    if pending is not None:
        raise RetryRefused(
            "",
            f"A retry of this send is already scheduled for "
            f"{pending.scheduled_for:%Y-%m-%d %H:%M} UTC.",
        )
    if campaign.stop_at and at >= campaign.stop_at:
        raise RetryRefused("at", "The retry time is after the campaign's stop time.")


def _nothing_to_retry(send: Send, include: tuple[str, ...]) -> str:
    classes = failure_classes(send)
    if not any(c.count for c in classes):
        return "This send has no failed recipients."
    permanent = ", ".join(f"{c.retry_class} ({c.count})" for c in classes if c.count)
    return (
        "None of this send's failures is retried by default: every failed recipient failed "
        f"for a reason of the phone itself ({permanent}). Include a class to retry it anyway."
    )


def start_due_retry_waves(now: dt.datetime | None = None) -> list[int]:
    """Retry waves about to fire queue their recipients again; returns the send ids to
    dispatch (their sends are sending again)."""
    now = now or timezone.now()
    horizon = now + dt.timedelta(seconds=settings.DISPATCH_START_AHEAD_SECONDS)
    due = SendWave.objects.filter(
        kind=SendWave.Kind.RETRY,
        status=SendWave.Status.PENDING,
        scheduled_for__lte=horizon,
        send__campaign__status__in=Campaign.ACTIVE_STATUSES,
    ).values_list("pk", flat=True)
    started = []
    for wave_id in list(due):
        with transaction.atomic():
            wave = (
                SendWave.objects.select_for_update(of=("self",))
                .filter(pk=wave_id, status=SendWave.Status.PENDING)
                .first()
            )
            if wave is None:  # another beat started it
                continue
            send = (
                Send.objects.select_for_update(of=("self",))
                .select_related("campaign", "campaign__organization")
                .get(pk=wave.send_id)
            )
            if _start_wave(wave, send, now):
                started.append(send.pk)
    return started


def _start_wave(wave: SendWave, send: Send, now: dt.datetime) -> bool:
    codes = _retried_codes(send, tuple(wave.include))
    chosen = _chosen_rows(send, codes, wave.scheduled_for)
    chosen_count = SendRecipient.objects.filter(
        send=send, status=SendRecipient.Status.FAILED, error_code__in=codes
    ).count()
    new_leads = {pk: lead for pk, current, lead in chosen if current != lead}
    requeued = recipients.requeue_failed([pk for pk, _, _ in chosen], wave.number, new_leads)
    wave.status, wave.started_at = SendWave.Status.STARTED, now
    wave.chosen, wave.requeued = chosen_count, requeued
    wave.save(update_fields=["status", "started_at", "chosen", "requeued"])
    logger.info(
        "retry wave of send %s started: %s of %s failed recipients queued again",
        send.pk,
        requeued,
        chosen_count,
        extra={"send_id": send.pk, "wave": wave.number, "requeued": requeued},
    )
    if requeued:
        services.transition_send(
            send,
            "retry",
            now=now,
            reason=f"Retry {wave.number - 1}: {requeued:,} failed recipients queued again.",
            completed_at=None,
        )
        return True
    campaign = send.campaign
    if campaign.status == Campaign.Status.SCHEDULED and (
        services.status_from_sends(campaign) == Campaign.Status.COMPLETED
    ):
        services.transition_campaign(
            campaign, "complete", reason="The retry found no failed recipient to message."
        )
    return False


def _chosen_rows(
    send: Send, codes: list[str], at: dt.datetime
) -> list[tuple[int, int | None, int]]:
    """(row id, its lead, the lead to message now) of the failed rows with these error codes
    whose phone the send reaches at `at` and the frequency cap does not hold."""
    if not codes:
        return []
    eligible, params = Eligible.of_send(send, at=at).sql()
    table = SendRecipient._meta.db_table
    marks = ", ".join(["%s"] * len(codes))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT r.id, r.lead_id, e.id FROM {table} r JOIN ({eligible}) e "
            "ON e.phone_e164 = r.phone_e164 AND e.held = '' "
            f"WHERE r.send_id = %s AND r.status = %s AND r.error_code IN ({marks})",
            [*params, send.pk, SendRecipient.Status.FAILED, *codes],
        )
        return cursor.fetchall()
