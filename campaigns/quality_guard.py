"""The quality guard (issue 16.4): stop sending before a number's quality is damaged further.

Meta flags a number whose recipients block or report it; messaging on regardless lowers its
messaging limit and can get it restricted. When Meta flags the number (or its quality reads
RED) every active campaign on it pauses, with the reason on its send for the marketer and a
`send.paused` event for partners; resuming is a conscious action of the marketer's. So does a
send whose recipients answer with a burst of STOPs (the organization's threshold), and one
whose answers are mostly recipient-permanent failures (campaigns.dispatcher.FailureGuard).
"""

import datetime as dt

from django.utils import timezone

from audiences.models import OptOut
from messaging.models import WhatsAppNumber
from setter.models import Organization

from . import sends
from .models import Campaign, Send, SendRecipient

# STOP replies count towards a send's burst within this long of its start, and only once it
# sent this many messages: three STOPs among the first fifty are noise, not a verdict.
STOP_BURST_WINDOW = dt.timedelta(hours=1)
STOP_BURST_MIN_MESSAGES = 100


def pause_for_number_quality(number: WhatsAppNumber, event: str) -> list[int]:
    """Pause the number's active campaigns; returns the ids of the sends that carry the
    reason (each campaign's earliest unfinished send: the one firing, else the next)."""
    reason = (
        f"Meta reports the quality of {number} as {event}: more messages now risk its "
        "messaging limit. Check the recent templates and audiences before resuming."
    )
    paused = []
    campaigns = Campaign.objects.filter(
        whatsapp_number=number, status__in=Campaign.ACTIVE_STATUSES
    ).order_by("pk")
    for campaign in campaigns:
        send = (
            campaign.sends.filter(status__in=Send.UNFINISHED_STATUSES)
            .order_by("scheduled_for", "pk")
            .first()
        )
        if send is not None:
            sends.pause_automatically(send, reason)
            paused.append(send.pk)
    return paused


def on_quality_degraded(sender, *, number: WhatsAppNumber, event: str, **kwargs) -> list[int]:
    """messaging.signals.quality_degraded: a flag from Meta's webhook, or RED from a sync."""
    return pause_for_number_quality(number, event)


def pause_for_stop_bursts(organization_id: int, *, now: dt.datetime | None = None) -> list[int]:
    """After new STOP replies: pause each active send of the organization started within the
    hour whose recipients' STOPs since its start pass the organization's share of the
    messages it sent. Returns the ids of the sends paused."""
    now = now or timezone.now()
    organization = Organization.objects.get(pk=organization_id)
    recent = Send.objects.filter(
        campaign__organization_id=organization_id,
        campaign__status__in=Campaign.ACTIVE_STATUSES,
        started_at__gte=now - STOP_BURST_WINDOW,
    ).order_by("pk")
    paused = []
    for send in recent:
        assert send.started_at is not None  # filtered on it above
        messaged = send.recipients.filter(status__in=SendRecipient.MESSAGED_STATUSES)
        sent = messaged.count()
        if sent < STOP_BURST_MIN_MESSAGES:
            continue
        stops = OptOut.objects.filter(
            organization_id=organization_id,
            source=OptOut.Source.KEYWORD,
            created_at__gte=send.started_at,
            created_at__lte=send.started_at + STOP_BURST_WINDOW,
            phone_e164__in=messaged.values("phone_e164"),
        ).count()
        if stops * 100 > organization.guard_stop_percent * sent:
            reason = (
                f"{stops} of the {sent} recipients messaged so far replied STOP within the hour "
                f"(over {organization.guard_stop_percent}%): review the audience and the "
                "message before resuming."
            )
            sends.pause_automatically(send, reason)
            paused.append(send.pk)
    return paused
