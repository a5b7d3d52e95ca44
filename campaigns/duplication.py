"""Duplicating a campaign: a new draft that would do what the original did, from now on.

The copy keeps the number, the audiences, the policy, and every send's template, parameters,
category, rate and filters. It keeps none of the original's recipients, filter payloads, events
or counters: a partner posts the audience filter of the copy's sends again, and its analytics
start at zero.

Dates: the whole schedule moves by the smallest number of whole days that puts every send at
least DUPLICATE_LEAD_TIME from now and on a day where its local time exists (a day whose
spring-forward gap swallows it is passed over). Each send keeps its own local time and zone,
and the days between sends stay the same. A campaign still entirely in the future moves by
zero days. `stopAt`, if set, moves by the same number of days.
"""

import datetime as dt
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audiences.segments import copy_segment

from .models import Campaign, Send
from .services import resolve_local_time, save_campaign

# Time for the marketer to review the copy before its first send could fire.
DUPLICATE_LEAD_TIME = dt.timedelta(hours=1)
# Past the first shift that clears `earliest`, DST gaps can rule out a few more days.
EXTRA_SHIFT_DAYS = 7


class DuplicationError(ValidationError):
    """The campaign cannot be duplicated as asked (a clear message for the marketer)."""


class Duplicate(NamedTuple):
    campaign: Campaign
    days_moved: int

    @property
    def schedule_note(self) -> str:
        """What happened to the dates, for the marketer who reviews the copy."""
        if not self.days_moved:
            return "Its sends keep their dates and local times."
        days = "1 day" if self.days_moved == 1 else f"{self.days_moved} days"
        return f"Its sends moved {days} later, at the same local times: check them."


def duplicate_campaign(
    campaign: Campaign, *, name: str = "", api_id: str = "", now: dt.datetime | None = None
) -> Duplicate:
    """The copy as a draft of the same organization, saved with its sends and audiences.
    `api_id` is the copy's REST id (default: a generated UUID); the caller checks it is free."""
    now = now or timezone.now()
    sends = list(campaign.sends.order_by("position", "pk"))
    shift = _schedule_shift(sends, now + DUPLICATE_LEAD_TIME)
    name_limit = Campaign._meta.get_field("name").max_length
    copy = Campaign(
        organization=campaign.organization,
        name=(name or f"{campaign.name} (copy)")[:name_limit],
        description=campaign.description,
        whatsapp_number=campaign.whatsapp_number,
        product_policy=campaign.product_policy,
        product_policy_confirmed=campaign.product_policy_confirmed,
        stop_at=campaign.stop_at + shift if campaign.stop_at else None,
        status=Campaign.Status.DRAFT,
        status_reason=f"Duplicated from campaign '{campaign.name}' ({campaign.api_id}).",
    )
    if api_id:
        copy.api_id = api_id
    with transaction.atomic():
        audiences = [
            # A campaign's own lead list is nobody else's: the copy gets a list of its own.
            copy_segment(audience, name=f"Leads of campaign {copy.api_id}")
            if audience.hidden
            else audience
            for audience in campaign.audiences.all()
        ]
        save_campaign(copy, audiences=audiences)
        Send.objects.bulk_create([_send_copy(send, copy, shift) for send in sends])
    return Duplicate(copy, shift.days)


def _send_copy(send: Send, campaign: Campaign, shift: dt.timedelta) -> Send:
    local_date = send.local_date + shift
    return Send(
        campaign=campaign,
        position=send.position,
        name=send.name,
        local_date=local_date,
        local_time=send.local_time,
        time_zone=send.time_zone,
        recipient_local_time=send.recipient_local_time,
        scheduled_for=resolve_local_time(local_date, send.local_time, send.time_zone).utc,
        start_offset_minutes=send.start_offset_minutes,
        category=send.category,
        template=send.template,
        parameter_mapping=send.parameter_mapping,
        audience_filter_mode=send.audience_filter_mode,
        event_filter_mode=send.event_filter_mode,
        event_filter_type=send.event_filter_type,
        event_filter_within_minutes=send.event_filter_within_minutes,
        max_messages_per_second=send.max_messages_per_second,
    )


def _schedule_shift(sends: list[Send], earliest: dt.datetime) -> dt.timedelta:
    """The smallest whole-day shift at which every send is valid and no earlier than
    `earliest`. Sends that fire relative to the campaign's start have no date of their own."""
    dated = [send for send in sends if send.start_offset_minutes is None]
    # No shift of fewer days can clear `earliest` for the send furthest behind it.
    first = max([0, *((earliest - send.scheduled_for).days for send in dated)])
    for days in range(first, first + EXTRA_SHIFT_DAYS + 1):
        shift = dt.timedelta(days=days)
        if all(_fires_after(send, shift, earliest) for send in dated):
            return shift
    raise DuplicationError(
        f"No day within {EXTRA_SHIFT_DAYS} days has every send's local time: set the copy's "
        "dates by hand."
    )


def _fires_after(send: Send, shift: dt.timedelta, earliest: dt.datetime) -> bool:
    try:
        instant = resolve_local_time(send.local_date + shift, send.local_time, send.time_zone)
    except ValidationError:  # the local time does not exist on that day
        return False
    return instant.utc >= earliest
