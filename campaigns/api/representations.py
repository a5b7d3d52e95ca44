"""The campaign and send objects of the REST API (and of the outbound campaign events).

camelCase and JSON-ready: ids are strings, instants ISO 8601 in UTC, statuses in the campaign
API's vocabulary. A campaign's `id` is its `api_id`, the id the partner chose or was given.
"""

import datetime as dt

from django.db.models import Prefetch

from audiences.api.representations import segment_id
from campaigns import pacing, selectors
from campaigns.models import Campaign, Send, SendWave
from campaigns.rendering import api_parameter, api_parameters

from .send_windows import window_json

# The campaign statuses in seed 003's vocabulary: a paused campaign is still in progress
# (`paused` says it is held), a cancelled one was stopped before its end.
API_STATUSES: dict[str, str] = {
    Campaign.Status.DRAFT: "draft",
    Campaign.Status.SCHEDULED: "scheduled",
    Campaign.Status.RUNNING: "in_progress",
    Campaign.Status.PAUSED: "in_progress",
    Campaign.Status.STOPPED: "stopped",
    Campaign.Status.CANCELLED: "stopped",
    Campaign.Status.COMPLETED: "completed",
}
# What a status filter value stands for.
STATUS_FILTER_VALUES: dict[str, str | list[str]] = {
    api: [db for db, name in API_STATUSES.items() if name == api]
    for api in dict.fromkeys(API_STATUSES.values())
}
# Recipients whose message Meta accepted.
SENT_STATUSES = ("sent", "delivered", "read")


def campaign_json(campaign: Campaign) -> dict:
    """The campaign with its sends and stats. Queries: the number, audiences and sends (use
    `campaign_queryset()` to prefetch them) and one for every send's recipient counts."""
    progress = selectors.campaign_send_progress(campaign)
    sends = sorted(campaign.sends.all(), key=lambda send: (send.position, send.pk))
    return {
        "id": campaign.api_id,
        # The admin's id, and the campaignId seed 000's audience-filter webhook takes.
        "campaignId": campaign.pk,
        "name": campaign.name,
        "description": campaign.description,
        "status": API_STATUSES[campaign.status],
        "paused": campaign.status == Campaign.Status.PAUSED,
        "statusReason": campaign.status_reason,
        "senderId": campaign.whatsapp_number.phone_number_id,
        # A campaign's own lead list (hidden segment) is not a segment the partner made.
        "segmentIds": sorted(
            (segment_id(a) for a in campaign.audiences.all() if not a.hidden), key=_numeric
        ),
        "productPolicyConfirmed": campaign.product_policy_confirmed,
        "productPolicy": campaign.product_policy,
        "scheduledFor": _iso(min((s.scheduled_for for s in sends if _is_placed(s)), default=None)),
        "stopAt": _iso(campaign.stop_at),
        "sendWindow": window_json(campaign),
        "createdAt": _iso(campaign.created_at),
        "updatedAt": _iso(campaign.updated_at),
        "stats": _campaign_stats(campaign, sends, progress),
        "sends": [_send_json(send, progress[send.pk]) for send in sends],
        "warnings": pacing.rate_warnings(sends),
    }


def send_json(send: Send) -> dict:
    """One send with its own status and stats (two queries: the send's template is read)."""
    return _send_json(send, selectors.send_progress(send))


def campaign_queryset():
    """Campaigns with what campaign_json reads prefetched."""
    return Campaign.objects.select_related("whatsapp_number").prefetch_related(
        "audiences", _sends_prefetch()
    )


def _sends_prefetch() -> Prefetch:
    return Prefetch(
        "sends",
        queryset=Send.objects.select_related("template")
        .prefetch_related("waves")
        .order_by("position", "pk"),
    )


def _send_json(send: Send, progress: selectors.SendProgress) -> dict:
    event_filter = None
    if send.event_filter_mode != Send.EventFilterMode.OFF:
        minutes = send.event_filter_within_minutes
        event_filter = {
            "mode": send.event_filter_mode,
            "eventType": send.event_filter_type,
            "within": None if minutes is None else {"minutes": minutes},
        }
    return {
        "id": str(send.pk),
        # The sendId seed 000's audience-filter webhook takes.
        "sendId": send.pk,
        "name": send.name,
        "position": send.position,
        "status": send.status,
        "statusReason": send.status_reason,
        "template": send.template.name,
        "language": send.template.language,
        "category": send.category,
        **api_parameters(
            [api_parameter(entry) for entry in send.parameter_mapping],
            send.template.parameter_slots,
        ),
        "schedule": _schedule(send),
        "scheduledFor": _iso(send.scheduled_for) if _is_placed(send) else None,
        "maxMessagesPerSecond": send.max_messages_per_second,
        "rate": pacing.send_rate(send).as_json(),
        "audienceFilter": send.audience_filter_mode,
        "eventFilter": event_filter,
        "stats": {
            "startedAt": _iso(send.started_at),
            "completedAt": _iso(send.completed_at),
            **_counts(progress),
            "progress": round(selectors.send_fraction_done(send, progress), 4),
        },
        "retries": [retry_json(w) for w in send.waves.all() if w.kind == SendWave.Kind.RETRY],
        "waves": [wave_json(w) for w in send.waves.all() if w.kind == SendWave.Kind.LOCAL],
    }


def wave_json(wave: SendWave) -> dict:
    """A wave of a send at each recipient's local time: the zones that read it at one instant."""
    return {
        "wave": wave.number,
        "status": wave.status,
        "scheduledFor": _iso(wave.scheduled_for),
        "zones": wave.zones,
        # Zones where the local time does not exist that day (the wave is the next valid
        # minute there), and the recipients it moved.
        "shiftedZones": wave.shifted_zones,
        "recipients": wave.recipients,
        "shifted": wave.shifted,
        "startedAt": _iso(wave.started_at),
    }


def retry_json(wave: SendWave) -> dict:
    """A retry wave of a send's failed recipients (POST …/sends/{sendId}/retry)."""
    return {
        "wave": wave.number,
        "status": wave.status,
        "scheduledFor": _iso(wave.scheduled_for),
        "include": wave.include,
        # Set when the wave started: the failed recipients it chose, and of those the ones
        # it queued again (the others the send no longer reaches: opted out, left, capped).
        "chosen": wave.chosen,
        "requeued": wave.requeued,
        "startedAt": _iso(wave.started_at),
    }


def _is_placed(send: Send) -> bool:
    """A send has a real instant unless it waits for its campaign's start (still a draft)."""
    return send.start_offset_minutes is None or send.campaign.status != Campaign.Status.DRAFT


def _schedule(send: Send) -> dict:
    if send.start_offset_minutes is not None:
        return {"startOffsetMinutes": send.start_offset_minutes}
    return {
        "localDate": send.local_date.isoformat(),
        "localTime": send.local_time.isoformat(timespec="seconds"),
        "timeZone": send.time_zone,
        "recipientLocalTime": send.recipient_local_time,
    }


def _counts(progress: selectors.SendProgress) -> dict:
    return {
        "messagesSent": sum(progress.counts[status] for status in SENT_STATUSES),
        "recipients": progress.total,
        "counts": progress.counts,
        "limitedReporting": progress.limited_reporting,
    }


def _campaign_stats(campaign: Campaign, sends: list[Send], progress: dict) -> dict:
    """Totals over the sends, and the campaign's share done."""
    per_send = [progress[send.pk] for send in sends]
    totals = selectors.SendProgress.total_of(per_send)
    fractions = [selectors.send_fraction_done(s, p) for s, p in zip(sends, per_send, strict=True)]
    finished = API_STATUSES[campaign.status] in ("completed", "stopped")
    return {
        "startedAt": _iso(min((s.started_at for s in sends if s.started_at), default=None)),
        "completedAt": _iso(max((s.completed_at for s in sends if s.completed_at), default=None))
        if finished
        else None,
        **_counts(totals),
        "progress": round(selectors.campaign_fraction_done(campaign, fractions), 4),
    }


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _numeric(value: str):
    return (len(value), value)
