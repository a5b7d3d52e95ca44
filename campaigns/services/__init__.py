"""The campaign editor's rules: local times to UTC instants, what may be edited when, the
onboarding gates, and the one lifecycle state machine every caller (admin, API, engine) uses.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from audiences.segments import delete_segment
from messaging.models import MessageTemplate, WhatsAppNumber

from .. import events, local_time, recipients
from ..models import Campaign, Send, SendRecipient, SendWave
from ..rendering import validate_parameter_mapping
from .gates import resume_problems, scheduling_problems, send_problems
from .time_zones import ResolvedInstant, resolve_local_time, time_zone_names, wall_time_in

Status = Campaign.Status


class CampaignTransitionError(ValidationError):
    """An action the campaign's status does not allow, or a gate that failed; one message each."""


class CampaignNotEditable(ValidationError):
    """The campaign left draft: its settings and sends are locked."""


# --- Editing a draft -----------------------------------------------------------------------


def _ensure_editable(campaign: Campaign) -> None:
    if campaign.status != Status.DRAFT:
        raise CampaignNotEditable(
            f"The campaign is {campaign.get_status_display().lower()}: its settings and sends "
            "can only be changed while it is a draft.",
            code="not_editable",
        )


def _lock(campaign_id: int) -> Campaign:
    return Campaign.objects.select_for_update().get(pk=campaign_id)


def validate_campaign(campaign: Campaign, audiences=()) -> None:
    """The number and audiences must belong to the campaign's organization."""
    errors = {}
    number = campaign.whatsapp_number if campaign.whatsapp_number_id else None
    if number is not None and number.organization_id != campaign.organization_id:
        errors["whatsapp_number"] = "Pick a WhatsApp number of the campaign's organization."
    foreign = [a.name for a in audiences if a.organization_id != campaign.organization_id]
    if foreign:
        errors["audiences"] = f"Not audiences of the campaign's organization: {', '.join(foreign)}."
    if errors:
        raise ValidationError(errors)


def save_campaign(campaign: Campaign, *, audiences=None) -> Campaign:
    """Create or change a draft campaign; refused once it left draft."""
    with transaction.atomic():
        if campaign.pk is not None:
            _ensure_editable(_lock(campaign.pk))
        validate_campaign(campaign, audiences or ())
        campaign.save()
        if audiences is not None:
            campaign.audiences.set(audiences)
    return campaign


# Seed 001's `within.minutes` bound, wherever an event filter is written.
MAX_EVENT_WINDOW_MINUTES = 525_600
EVENT_WINDOW_PROBLEM = f"A window of 1 to {MAX_EVENT_WINDOW_MINUTES:,} minutes (a year), or none."


def offered_templates(
    templates: QuerySet[MessageTemplate], number: WhatsAppNumber | None = None
) -> QuerySet[MessageTemplate]:
    """Of these templates, those the editor offers a send: APPROVED ones of the number's WABA
    (or synced without one) when the number is known. The send's category narrows them
    further on the page, as the marketer picks it."""
    templates = templates.filter(status=MessageTemplate.Status.APPROVED)
    if number is not None:
        templates = templates.filter(Q(waba_id=number.waba_id) | Q(waba_id=""))
    return templates


def template_choice_problem(
    template: MessageTemplate, number: WhatsAppNumber | None, category: str
) -> str | None:
    """Why the editor refuses this template for a send (offered_templates' rule, in words)."""
    if template.status != MessageTemplate.Status.APPROVED:
        return f"The template '{template.name}' is {template.status}: pick an APPROVED one."
    if number is not None and template.waba_id not in ("", number.waba_id):
        return (
            f"The template '{template.name}' belongs to WABA {template.waba_id}, not to the "
            f"number's WABA {number.waba_id}."
        )
    if template.category != category:
        return (
            f"The template '{template.name}' is {template.category}: pick a {category} template "
            "for this send."
        )
    return None


def validate_send(
    send: Send, campaign: Campaign | None = None, *, variables: set[str] | None = None
) -> ResolvedInstant:
    """Field-by-field problems of a send (ValidationError keyed by field), else its instant.

    `campaign` stands in for send.campaign while the campaign itself is being created;
    `variables` are those its audience's leads have (selectors.available_variables), which
    the parameters may name.
    """
    campaign = campaign or send.campaign
    errors: dict[str, list[str]] = {}
    resolved = None
    try:
        resolved = resolve_local_time(send.local_date, send.local_time, send.time_zone)
    except ValidationError as error:
        field = "time_zone" if error.code == "unknown_time_zone" else "local_time"
        errors[field] = error.messages
    template = send.template if send.template_id else None
    if template is not None and campaign.organization_id:
        if template.organization_id != campaign.organization_id:
            errors["template"] = ["Pick a template of the campaign's organization."]
        else:
            problems = validate_parameter_mapping(
                send.parameter_mapping, template.parameter_slots, variables
            )
            if problems:
                errors["parameter_mapping"] = problems
    if send.event_filter_mode != Send.EventFilterMode.OFF and not send.event_filter_type.strip():
        errors["event_filter_type"] = ["Name the event type the filter includes or excludes."]
    within = send.event_filter_within_minutes
    if within is not None and not 1 <= within <= MAX_EVENT_WINDOW_MINUTES:
        errors["event_filter_within_minutes"] = [EVENT_WINDOW_PROBLEM]
    if send.event_filter_mode == Send.EventFilterMode.OFF and (
        send.event_filter_type or send.event_filter_within_minutes
    ):
        errors["event_filter_mode"] = [
            "Pick include or exclude to filter on an event, or clear its type and minutes."
        ]
    if errors:
        raise ValidationError(errors)
    assert resolved is not None  # no errors, so the local time resolved
    return resolved


def save_send(send: Send) -> ResolvedInstant:
    """Save a send of a draft campaign with the UTC instant of its local time.

    The campaign row is locked so a send cannot change while the campaign is being scheduled.
    """
    with transaction.atomic():
        campaign = _lock(send.campaign_id)
        _ensure_editable(campaign)
        resolved = validate_send(send, campaign)
        send.scheduled_for = resolved.utc
        send.save()
    return resolved


def delete_send(send: Send) -> None:
    with transaction.atomic():
        _ensure_editable(_lock(send.campaign_id))
        send.delete()


# --- The lifecycle state machine -----------------------------------------------------------


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


# --- Starting and deleting (the REST API's verbs) ------------------------------------------

# "Start now" schedules this far ahead, so the start instant still passes the "not in the
# past" gate when the gates run a moment later.
START_NOW_LEEWAY = dt.timedelta(seconds=2)
DELETABLE_STATUSES = (Status.DRAFT, *Campaign.FINISHED_STATUSES)


def start_campaign(
    campaign: Campaign,
    *,
    scheduled_for: dt.datetime | None = None,
    stop_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> Campaign:
    """Start a draft at `scheduled_for` (default: now): sends without a schedule of their
    own fire at the start plus their offset, then the admin's own "schedule" transition
    applies every gate. Refused (CampaignTransitionError) with nothing changed."""
    start = scheduled_for or (now or timezone.now()) + START_NOW_LEEWAY
    with transaction.atomic():
        locked = _lock(campaign.pk)
        if locked.status != Status.DRAFT:
            raise CampaignTransitionError(
                f"Cannot start a {locked.get_status_display().lower()} campaign: "
                "only a draft can be started",
                code="illegal_transition",
            )
        if stop_at is not None and stop_at <= start:
            raise CampaignTransitionError(
                "The stop time must be after the start", code="stop_before_start"
            )
        if scheduled_for is not None:
            _refuse_sends_before(locked, scheduled_for)
        for send in locked.sends.filter(start_offset_minutes__isnull=False):
            # Never None: the query above excludes those.
            instant = (start + dt.timedelta(minutes=send.start_offset_minutes)).astimezone(dt.UTC)  # type: ignore[arg-type]
            # Shown in the zone the send was created in (the organization's).
            send.local_date, send.local_time, send.time_zone = wall_time_in(instant, send.time_zone)
            send.scheduled_for = instant
            send.save(update_fields=["local_date", "local_time", "time_zone", "scheduled_for"])
        if stop_at is not None:
            locked.stop_at = stop_at
            locked.save(update_fields=["stop_at", "updated_at"])
        transition_campaign(locked, "schedule")
    campaign.refresh_from_db()
    return campaign


def _refuse_sends_before(campaign: Campaign, start: dt.datetime) -> None:
    """A campaign started at `start` never sends before it: a send with a time of its own
    earlier than that is refused by name rather than moved, since the marketer chose it."""
    early = campaign.sends.filter(start_offset_minutes__isnull=True, scheduled_for__lt=start)
    named = [
        f"send {send.position + 1}{f' ({send.name})' if send.name else ''} at "
        f"{send.scheduled_for.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"
        for send in early.order_by("position", "pk")
    ]
    if named:
        raise CampaignTransitionError(
            f"scheduledFor {start.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ} is after "
            f"{'; '.join(named)}: these would fire before it. Move them, or start earlier.",
            code="sends_before_start",
        )


def delete_campaign(campaign: Campaign) -> None:
    """Delete a draft or a finished campaign with its sends and their recipients; a live one
    must be stopped first, so no worker is left sending for a campaign that is gone."""
    with transaction.atomic():
        locked = _lock(campaign.pk)
        if locked.status not in DELETABLE_STATUSES:
            raise CampaignTransitionError(
                f"Cannot delete a {locked.get_status_display().lower()} campaign: stop it "
                "first, or wait until it completes",
                code="not_deletable",
            )
        lead_lists = list(locked.audiences.filter(hidden=True))
        locked.delete()
        for lead_list in lead_lists:  # the campaign's own hidden segment of leadIds
            delete_segment(lead_list)


__all__ = [
    "ResolvedInstant",
    "time_zone_names",
    "resolve_local_time",
    "wall_time_in",
    "send_problems",
    "scheduling_problems",
    "resume_problems",
]
