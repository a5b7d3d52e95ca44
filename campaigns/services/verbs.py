"""Starting and deleting a campaign: the REST API's verbs. A start places the sends that
fire at an offset from it, then takes the lifecycle's own "schedule" with every gate; a
delete takes a draft or a finished campaign away with its hidden segment of leads.

Its own module because both are built on the lifecycle rather than part of it: neither
adds a transition to the state machine.
"""

import datetime as dt

from django.db import transaction
from django.utils import timezone

from audiences.segments import delete_segment

from ..models import Campaign
from .lifecycle import CampaignTransitionError, _lock, transition_campaign
from .time_zones import wall_time_in

Status = Campaign.Status

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
