"""Campaigns' side of deleting a segment: a campaign still reading it forbids the delete, and
its messages let go of the leads that go with it (they keep phone and status for analytics).
Registered with audiences at ready, since audiences sits below campaigns and cannot ask."""

from django.db.models import QuerySet

from audiences.models import Audience, Lead
from audiences.segments import REPORTED_UNKNOWN_TARGETS, SegmentReader

from .models import Campaign, SendRecipient

# A campaign in these states will still read its segments: they cannot be deleted under it.
USING_CAMPAIGN_STATUSES = (
    Campaign.Status.SCHEDULED,
    Campaign.Status.RUNNING,
    Campaign.Status.PAUSED,
)


def campaigns_using(audience: Audience) -> str | None:
    """The first few scheduled, running or paused campaigns targeting the segment."""
    using = list(
        audience.campaigns.filter(status__in=USING_CAMPAIGN_STATUSES)
        .order_by("pk")
        .values_list("pk", flat=True)[:REPORTED_UNKNOWN_TARGETS]
    )
    if not using:
        return None
    return f"campaign(s) {', '.join(map(str, using))} that are scheduled, running or paused"


def release_leads(leads: QuerySet[Lead]) -> None:
    SendRecipient.objects.filter(lead__in=leads).update(lead=None)


READER = SegmentReader(using=campaigns_using, release_leads=release_leads)
