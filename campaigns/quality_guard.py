"""The quality guard (issue 16.4): stop sending before a number's quality is damaged further.

Meta flags a number whose recipients block or report it; messaging on regardless lowers its
messaging limit and can get it restricted. When Meta flags the number (or its quality reads
RED) every active campaign on it pauses, with the reason on its send for the marketer and a
`send.paused` event for partners; resuming is a conscious action of the marketer's.
"""

from messaging.models import WhatsAppNumber

from . import sends
from .models import Campaign, Send


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
