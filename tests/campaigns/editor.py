"""Campaigns the editor tests start from: one that passes every gate, and ways to break it."""

import datetime as dt

from django.utils import timezone

from campaigns.models import Campaign
from messaging.models import Category
from tests.factories import (
    AudienceFactory,
    CampaignFactory,
    LeadFactory,
    MessageTemplateFactory,
    SendFactory,
)


def ready_campaign(*, sends=2, category=Category.MARKETING, leads=3, **campaign_fields):
    """A draft campaign that may be scheduled: a ready audience, an approved template of
    the send's category, MM Lite terms accepted, opt-in confirmed, sends a day apart ahead."""
    campaign = CampaignFactory(**campaign_fields)
    audience = AudienceFactory(organization=campaign.organization)
    for _ in range(leads):
        LeadFactory(audience=audience)
    campaign.audiences.add(audience)
    template = MessageTemplateFactory(organization=campaign.organization, category=category)
    for position in range(sends):
        at = timezone.now() + dt.timedelta(days=position + 1)
        SendFactory(
            campaign=campaign,
            position=position,
            category=category,
            template=template,
            scheduled_for=at,
        )
    return campaign


def refreshed(campaign: Campaign) -> Campaign:
    return Campaign.objects.get(pk=campaign.pk)
