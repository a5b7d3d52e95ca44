"""Reads the webhook views need before they know who is calling."""

from campaigns.models import Campaign
from setter.models import Organization


def organization_owning_campaign(campaign_id: int) -> Organization | None:
    campaign = Campaign.objects.select_related("organization").filter(pk=campaign_id).first()
    return campaign.organization if campaign else None


def organization_by_slug(slug: str) -> Organization | None:
    return Organization.objects.filter(slug=slug).first()
