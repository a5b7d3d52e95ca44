"""Which state changes partners hear about: the one place mapping a campaign's or a send's
status change to an outbound event. `status_changed` receives campaigns' status-changed
signal (connected when the webhooks app is ready), inside the transaction that saves the new
status."""

from typing import Any

from django.utils import timezone

from campaigns.api.representations import campaign_json, send_json
from campaigns.models import Campaign, Send
from webhooks.models import EventType

from .services import emit_event


def event_type_for(obj: Campaign | Send, previous_status: str) -> str | None:
    """The event a status change is, if any.

    A campaign goes back to scheduled between its sends and runs again for the next one; it
    started only when its first send did (resuming a paused campaign is no start either).
    """
    status = obj.status
    if status == previous_status:
        return None
    if isinstance(obj, Campaign):
        if status == Campaign.Status.COMPLETED:
            return EventType.CAMPAIGN_COMPLETED
        if status == Campaign.Status.STOPPED:
            return EventType.CAMPAIGN_STOPPED
        if (
            status == Campaign.Status.RUNNING
            and previous_status == Campaign.Status.SCHEDULED
            and obj.sends.exclude(started_at=None).count() == 1
        ):
            return EventType.CAMPAIGN_STARTED
        return None
    if status == Send.Status.SENDING:
        return EventType.SEND_STARTED
    if status == Send.Status.COMPLETED:
        return EventType.SEND_COMPLETED
    return None


def status_changed(sender, *, obj: Campaign | Send, previous_status: str, **kwargs) -> None:
    event_type = event_type_for(obj, previous_status)
    if event_type is not None:
        campaign = obj if isinstance(obj, Campaign) else obj.campaign
        emit_event(campaign.organization_id, event_type, lambda: _payload(event_type, obj))


def send_paused(sender, *, send: Send, reason: str, **kwargs) -> None:
    """The engine paused the send's campaign by itself (a send-level error, the quality
    guard): partners hear it with the reason, inside the pausing transaction."""
    emit_event(
        send.campaign.organization_id,
        EventType.SEND_PAUSED,
        lambda: {**_payload(EventType.SEND_PAUSED, send), "reason": reason},
    )


def _payload(event_type: str, obj: Campaign | Send) -> dict:
    """Seed 003's event shape: the type, the object with its status and stats, the instant."""
    if isinstance(obj, Campaign):
        body: dict[str, Any] = {"campaign": campaign_json(obj)}
    else:
        body = {"campaignId": obj.campaign.api_id, "send": send_json(obj)}
    created_at = timezone.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"type": event_type, **body, "created_at": created_at}
