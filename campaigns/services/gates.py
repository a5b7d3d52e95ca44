"""The onboarding gates: everything a campaign must pass before it is scheduled or resumed,
and what one message of a send must pass (a test send checks it first). Each gate answers
in messages the marketer reads, one problem each, in a stable order.

Its own module because the gates only read (the campaign, its sends, audiences and number);
the lifecycle state machine runs them as the gates of its "schedule" and "resume".
"""

import datetime as dt
from itertools import pairwise

from django.utils import timezone

from audiences.models import Audience
from messaging.models import Category, MessageTemplate

from .. import selectors
from ..models import Campaign, Send
from ..rendering import validate_parameter_mapping
from .time_zones import _clock


def _numbered_sends(campaign: Campaign) -> list[tuple[int, Send]]:
    """Sends in the editor's order, numbered from 1 as the marketer sees them."""
    sends = campaign.sends.select_related("template").order_by("position", "pk")
    return list(enumerate(sends, start=1))


def _template_problems(
    number: int, send: Send, campaign: Campaign, variables: set[str] | None
) -> list[str]:
    template: MessageTemplate = send.template
    if template.organization_id != campaign.organization_id:
        return [f"Send {number}: template '{template.name}' belongs to another organization"]
    problems = []
    if template.status != MessageTemplate.Status.APPROVED:
        problems.append(
            f"Send {number}: template '{template.name}' is {template.status}, not APPROVED"
        )
    if template.category != send.category:
        problems.append(
            f"Send {number}: template category {template.category} does not match the send's "
            f"category {send.category}"
        )
    problems += [
        f"Send {number}: {problem}"
        for problem in validate_parameter_mapping(
            send.parameter_mapping, template.parameter_slots, variables
        )
    ]
    return problems


def _timing_problems(numbered: list[tuple[int, Send]], now: dt.datetime) -> list[str]:
    problems = [
        f"Send {number} is in the past ({send.local_date:%Y-%m-%d} {_clock(send.local_time)} "
        f"{send.time_zone})"
        for number, send in numbered
        if send.scheduled_for <= now
    ]
    for (earlier_number, earlier), (number, send) in pairwise(numbered):
        if send.scheduled_for < earlier.scheduled_for:
            relation = "before"
        elif send.scheduled_for == earlier.scheduled_for:
            relation = "at the same time as"
        else:
            continue
        problems.append(
            f"Send {number} is scheduled {relation} send {earlier_number}: "
            "sends must be in chronological order"
        )
    return problems


def _mm_lite_problems(number) -> list[str]:
    if number.mm_lite_terms_accepted:
        return []
    return [
        f"The WhatsApp number {number.display_phone_number} has not accepted the MM Lite "
        "terms (required for MARKETING sends)"
    ]


def send_problems(send: Send) -> list[str]:
    """The gates one message of the send must pass wherever it goes (its template, its
    parameters, the number's MM Lite terms for MARKETING): what a test send checks first."""
    campaign = send.campaign
    position = next(n for n, numbered in _numbered_sends(campaign) if numbered.pk == send.pk)
    variables = selectors.available_variables(campaign.audiences.all())
    problems = _template_problems(position, send, campaign, variables)
    if send.category == Category.MARKETING:
        problems += _mm_lite_problems(campaign.whatsapp_number)
    return problems


def scheduling_problems(campaign: Campaign, *, now: dt.datetime | None = None) -> list[str]:
    """Every onboarding gate the campaign fails, one message each, in a stable order."""
    now = now or timezone.now()
    numbered = _numbered_sends(campaign)
    audiences = list(campaign.audiences.all())
    number = campaign.whatsapp_number
    problems = []
    if not numbered:
        problems.append("The campaign has no sends")
    if not audiences:
        problems.append("The campaign has no audience")
    problems += [
        f"The audience '{audience.name}' is not ready ({audience.get_status_display().lower()})"
        for audience in audiences
        if audience.status != Audience.Status.READY
    ]
    if number.organization_id != campaign.organization_id:
        problems.append(
            f"The WhatsApp number {number.display_phone_number} belongs to another organization"
        )
    variables = selectors.available_variables(audiences)
    for position, send in numbered:
        problems += _template_problems(position, send, campaign, variables)
    problems += _timing_problems(numbered, now)

    categories = {send.category for _, send in numbered}
    if Category.MARKETING in categories:
        problems += _mm_lite_problems(number)
        if not campaign.product_policy_confirmed:
            problems.append(
                "Confirm that recipients opted in (product policy) before scheduling "
                "MARKETING sends"
            )
    limit = number.messaging_limit_count
    if limit is not None and audiences and categories:
        eligible = max(selectors.eligible_recipient_count(campaign, c) for c in categories)
        if eligible > limit:
            problems.append(
                f"The audience has {eligible:,} eligible recipients but the number's messaging "
                f"limit is {limit:,} per 24 h"
            )
    return problems


def resume_problems(campaign: Campaign, *, now: dt.datetime | None = None) -> list[str]:
    """Sends still waiting to fire must still lie ahead, in order."""
    pending = [(n, s) for n, s in _numbered_sends(campaign) if s.status == Send.Status.PENDING]
    return _timing_problems(pending, now or timezone.now())
