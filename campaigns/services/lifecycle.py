"""The two lifecycle state machines every caller (admin, API, engine) goes through: the
campaign's (TRANSITIONS, transition_campaign) and the send's (SEND_TRANSITIONS,
transition_send), each the one place its status changes.

The two live in one module because each drives the other: a campaign's cancel or stop ends
its sends, and a send that starts, completes or is missed moves its campaign.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .. import events, local_time, recipients
from ..models import Campaign, Send, SendRecipient, SendWave
from .gates import resume_problems, scheduling_problems

Status = Campaign.Status


class CampaignTransitionError(ValidationError):
    """An action the campaign's status does not allow, or a gate that failed; one message each."""


def _lock(campaign_id: int) -> Campaign:
    return Campaign.objects.select_for_update().get(pk=campaign_id)


# --- The campaign's state machine ----------------------------------------------------------


def status_from_sends(campaign: Campaign) -> str:
    """Where a live campaign stands from its sends: firing, waiting, or done."""
    if campaign.sends.filter(status=Send.Status.SENDING).exists():
        return Status.RUNNING
    if campaign.sends.filter(status__in=Send.UNFIRED_STATUSES).exists():
        return Status.SCHEDULED
    if SendWave.objects.filter(
        send__campaign=campaign, status__in=SendWave.UNFIRED_STATUSES
    ).exists():
        return Status.SCHEDULED  # a retry of a completed send is still to come
    return Status.COMPLETED


def _end_sends(campaign: Campaign, reason: str, *, action: str) -> None:
    """A cancel or a stop: every message not yet on the wire is skipped at once. Sends that
    have not started never will; sends already firing end once the requests in flight have
    their answers (the dispatcher and beat see the campaign ended: sends.settle_send)."""
    rule = SEND_TRANSITIONS[action]
    SendWave.objects.filter(send__campaign=campaign, status__in=SendWave.UNFIRED_STATUSES).update(
        status=SendWave.Status.CANCELLED
    )
    firing = campaign.sends.filter(status=Send.Status.SENDING).values("pk")
    recipients.skip_unsent(firing, rule.skips_unsent)
    for send in campaign.sends.select_for_update().filter(status__in=Send.UNFIRED_STATUSES):
        transition_send(send, action, reason=reason or None)


@dataclass(frozen=True)
class Transition:
    verb: str
    sources: tuple[str, ...]
    target: str | Callable[[Campaign], str]
    gate: Callable[[Campaign], list[str]] | None = None
    effect: Callable[[Campaign, str], None] | None = None


TRANSITIONS: dict[str, Transition] = {
    "schedule": Transition("schedule", (Status.DRAFT,), Status.SCHEDULED, scheduling_problems),
    "pause": Transition("pause", (Status.SCHEDULED, Status.RUNNING), Status.PAUSED),
    "resume": Transition("resume", (Status.PAUSED,), status_from_sends, resume_problems),
    "cancel": Transition(
        "cancel",
        (Status.DRAFT, *Campaign.LIVE_STATUSES),
        Status.CANCELLED,
        effect=partial(_end_sends, action="cancel"),
    ),
    # Seed 003's stop: the API's stop call, or the campaign's stopAt passing.
    "stop": Transition(
        "stop",
        Campaign.LIVE_STATUSES,
        Status.STOPPED,
        effect=partial(_end_sends, action="stop"),
    ),
    "start_running": Transition("start running", (Status.SCHEDULED,), Status.RUNNING),
    "finish_send": Transition("finish a send of", (Status.RUNNING,), status_from_sends),
    "complete": Transition("complete", (Status.SCHEDULED, Status.RUNNING), Status.COMPLETED),
    # A retry of a completed send's failures (campaigns.retries) gives it a send to fire.
    "reopen": Transition("retry a send of", (Status.COMPLETED,), Status.SCHEDULED),
}

# The actions a marketer takes; the others are the send engine's.
ADMIN_ACTIONS = ("schedule", "pause", "resume", "cancel")


def available_actions(campaign: Campaign) -> list[str]:
    """Marketer actions the campaign's current status allows."""
    return [a for a in ADMIN_ACTIONS if campaign.status in TRANSITIONS[a].sources]


def transition_campaign(campaign: Campaign, action: str, *, reason: str = "") -> Campaign:
    """Move the campaign through its lifecycle, or raise CampaignTransitionError and change
    nothing. The row is locked first, so two callers never act on a stale status."""
    rule = TRANSITIONS.get(action)
    if rule is None:
        raise CampaignTransitionError(f"Unknown campaign action {action!r}", code="unknown_action")
    with transaction.atomic():
        locked = _lock(campaign.pk)
        if locked.status not in rule.sources:
            raise CampaignTransitionError(
                f"Cannot {rule.verb} a {locked.get_status_display().lower()} campaign",
                code="illegal_transition",
            )
        if action == "schedule":
            local_time.place_first_waves(locked)
        problems = rule.gate(locked) if rule.gate else []
        if problems:
            raise CampaignTransitionError(problems)
        previous_status = locked.status
        locked.status = rule.target(locked) if callable(rule.target) else rule.target
        locked.status_reason = reason
        locked.save(update_fields=["status", "status_reason", "updated_at"])
        if rule.effect:
            rule.effect(locked, reason)
        events.status_changed(locked, previous_status)
    campaign.status, campaign.status_reason = locked.status, locked.status_reason
    campaign.updated_at = locked.updated_at
    return campaign


# --- The send's state machine -------------------------------------------------------------
#
#   pending ──materialize──▶ materialized ──start──▶ sending ──complete──▶ completed
#      └──miss──▶ missed            (any of the three) ──stop──▶ stopped | ──cancel──▶ cancelled
#                                       sending ◀──retry── completed (a retry wave starts)


class SendTransitionError(Exception):
    """A send status change the table does not allow: its caller acted on a stale status."""


def _announce(send: Send, previous_status: str) -> None:
    events.status_changed(send, previous_status)


def _campaign_runs(send: Send, previous_status: str) -> None:
    """A send fires: its scheduled campaign runs (before the send's event, whose campaign
    is then running, and after the send's start, which the campaign's event counts)."""
    if send.campaign.status == Status.SCHEDULED:
        transition_campaign(send.campaign, "start_running")


def _campaign_finishes_send(send: Send, previous_status: str) -> None:
    """The campaign waits for its next send, or completes with its last."""
    if send.campaign.status == Status.RUNNING:
        transition_campaign(send.campaign, "finish_send")


def _campaign_completes_if_done(send: Send, previous_status: str) -> None:
    """A campaign whose last send was missed has nothing left to fire: it is completed."""
    if status_from_sends(send.campaign) == Status.COMPLETED:
        transition_campaign(send.campaign, "complete", reason="Every send has fired or was missed.")


@dataclass(frozen=True)
class SendTransition:
    """One allowed change of a send's status and what comes with it, in this order: the
    instant `stamp` records, the rows a stop or a cancel skips, then `effects` (the partner's
    event among them, where the change is one)."""

    sources: tuple[str, ...]
    target: str
    stamp: str
    reason: str | None = None  # the status_reason written unless the caller gives one
    skips_unsent: str = ""  # the SkipReason of rows not on the wire yet
    effects: tuple[Callable[[Send, str], None], ...] = (_announce,)


def too_late(instant: dt.datetime, now: dt.datetime) -> bool:
    """A send, or a wave of a send at each recipient's local time, reached this long after
    its instant (the system was down) is missed, not blasted late: one rule for both."""
    return now - instant > dt.timedelta(seconds=settings.SEND_MISSED_AFTER_SECONDS)


SendStatus = Send.Status
SEND_TRANSITIONS: dict[str, SendTransition] = {
    "materialize": SendTransition(
        (SendStatus.PENDING,), SendStatus.MATERIALIZED, "materialized_at"
    ),
    # Its fire time passed long before it could be materialized (the system was down).
    "miss": SendTransition(
        (SendStatus.PENDING,),
        SendStatus.MISSED,
        "materialized_at",
        effects=(_announce, _campaign_completes_if_done),
    ),
    "start": SendTransition(
        (SendStatus.MATERIALIZED,),
        SendStatus.SENDING,
        "started_at",
        effects=(_campaign_runs, _announce),
    ),
    "complete": SendTransition(
        (SendStatus.SENDING,),
        SendStatus.COMPLETED,
        "completed_at",
        effects=(_announce, _campaign_finishes_send),
    ),
    # A retry wave of its failed recipients starts (campaigns.retries): it dispatches again.
    "retry": SendTransition(
        (SendStatus.COMPLETED,),
        SendStatus.SENDING,
        "dispatch_heartbeat_at",
        effects=(_campaign_runs, _announce),
    ),
    "stop": SendTransition(
        Send.UNFINISHED_STATUSES,
        SendStatus.STOPPED,
        "completed_at",
        "Campaign stopped.",
        SendRecipient.SkipReason.STOPPED,
    ),
    "cancel": SendTransition(
        Send.UNFINISHED_STATUSES,
        SendStatus.CANCELLED,
        "completed_at",
        "Campaign cancelled.",
        SendRecipient.SkipReason.CANCELLED,
    ),
}


def transition_send(
    send: Send, action: str, *, reason: str | None = None, now: dt.datetime | None = None, **fields
) -> Send:
    """Move a send through its lifecycle with the change's side effects, or raise
    SendTransitionError and change nothing. The write is conditional on the statuses the
    table allows, so a caller holding a stale status fails instead of undoing a change.
    `fields` are written with the status (a materialized send's recipient count)."""
    rule = SEND_TRANSITIONS.get(action)
    if rule is None:
        raise SendTransitionError(f"Unknown send action {action!r}")
    changes = {"status": rule.target, rule.stamp: now or timezone.now(), **fields}
    if reason is not None or rule.reason is not None:
        changes["status_reason"] = rule.reason if reason is None else reason
    previous_status = send.status
    with transaction.atomic():
        if not Send.objects.filter(pk=send.pk, status__in=rule.sources).update(**changes):
            status = Send.objects.filter(pk=send.pk).values_list("status", flat=True).first()
            raise SendTransitionError(
                f"Cannot {action} send {send.pk}: it is {status}, not {' or '.join(rule.sources)}"
            )
        for field, value in changes.items():
            setattr(send, field, value)
        if rule.skips_unsent:
            recipients.skip_unsent([send.pk], rule.skips_unsent)
        for effect in rule.effects:
            effect(send, previous_status)
    return send
