"""The editing rules of a draft: what a campaign and its sends may hold (their number,
audiences, templates, parameters, local times and event filters), which templates the
editor offers a send, and saving or deleting them, refused once the campaign left draft.

Its own module because these rules guard a draft's content; the lifecycle guards its status.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet

from messaging.models import MessageTemplate, WhatsAppNumber

from ..models import Campaign, Send
from ..rendering import validate_parameter_mapping
from .lifecycle import _lock
from .time_zones import ResolvedInstant, resolve_local_time

Status = Campaign.Status


class CampaignNotEditable(ValidationError):
    """The campaign left draft: its settings and sends are locked."""


def _ensure_editable(campaign: Campaign) -> None:
    if campaign.status != Status.DRAFT:
        raise CampaignNotEditable(
            f"The campaign is {campaign.get_status_display().lower()}: its settings and sends "
            "can only be changed while it is a draft.",
            code="not_editable",
        )


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
