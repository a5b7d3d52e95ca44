"""Reads of the inbound webhooks: whom a request may come from, and what they refused."""

from campaigns.models import Campaign
from setter.models import Organization

from .models import RejectedStatusCount


def organization_owning_campaign(campaign_id: int) -> Organization | None:
    campaign = Campaign.objects.select_related("organization").filter(pk=campaign_id).first()
    return campaign.organization if campaign else None


def organization_by_slug(slug: str) -> Organization | None:
    return Organization.objects.filter(slug=slug).first()


def rejected_status_counts() -> dict[str, int]:
    """Meta status reports refused so far, by the field that was wrong."""
    return dict(RejectedStatusCount.objects.order_by("field").values_list("field", "count"))
