"""Campaigns the editor tests start from: one that passes every gate, and ways to break it."""

import datetime as dt
import json

from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign
from messaging.models import Category
from tests.factories import (
    AudienceFactory,
    CampaignFactory,
    LeadFactory,
    MessageTemplateFactory,
    SendFactory,
    WhatsAppNumberFactory,
)

ADD_URL = reverse("admin:campaigns_campaign_add")


def change_url(campaign):
    return reverse("admin:campaigns_campaign_change", args=[campaign.pk])


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


# --- The admin editor's POST bodies ------------------------------------------------------


def send_row(index, template, **fields):
    """Row `index` of the sends inline as the editor posts it, with `fields` changed."""
    row = {
        "id": "",
        "position": str(index),
        "name": "",
        "local_date": "2030-07-01",
        "local_time": "09:00",
        "time_zone": "UTC",
        "category": "MARKETING",
        "template": str(template.pk),
        "parameter_mapping": json.dumps(["first_name", "variables.coupon"]),
        "audience_filter_mode": "off",
        "event_filter_mode": "off",
        "event_filter_type": "",
        "event_filter_within_minutes": "",
        "max_messages_per_second": "20",
        **fields,
    }
    return {f"sends-{index}-{name}": value for name, value in row.items()}


def new_campaign_data(org, rows):
    """The add page's POST body: a campaign of `org` with a number, a ready audience (one
    lead, Ann, with a coupon) and these send rows."""
    number = WhatsAppNumberFactory(organization=org)
    audience = AudienceFactory(organization=org)
    LeadFactory(audience=audience, first_name="Ann", variables={"coupon": "SPRING"})
    data = {
        "organization": str(org.pk),
        "name": "Spring sale",
        "description": "",
        "whatsapp_number": str(number.pk),
        "audiences": [str(audience.pk)],
        "product_policy_confirmed": "on",
        "product_policy": "STRICT",
        "stop_at_0": "",
        "stop_at_1": "",
        "window_start": "",
        "window_end": "",
        "window_outside": "wait",
        "sends-TOTAL_FORMS": str(len(rows)),
        "sends-INITIAL_FORMS": "0",
        "sends-MIN_NUM_FORMS": "0",
        "sends-MAX_NUM_FORMS": "1000",
    }
    for row in rows:
        data.update(row)
    return data
