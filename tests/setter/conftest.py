"""Fixtures of the tests of every API route."""

import pytest

from campaigns.models import TestSend
from setter.services import create_api_key
from tests.factories import (
    AudienceFactory,
    CampaignFactory,
    LeadFactory,
    OrganizationFactory,
    SendFactory,
)
from webhooks.models import WebhookDelivery
from webhooks.outbound.services import create_endpoint


@pytest.fixture
def world(db):
    """One object of each kind a path can name, in the calling organization."""
    organization = OrganizationFactory()
    key = create_api_key(organization, "CRM")[1]
    segment = AudienceFactory(organization=organization)
    lead = LeadFactory(audience=segment)
    send = SendFactory(campaign=CampaignFactory(organization=organization))
    endpoint = create_endpoint(organization, "https://example.com/hooks")
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event_id="evt_1", event_type="campaign.started", payload={}
    )
    test_send = TestSend.objects.create(
        organization=organization, send=send, phone_e164="+447911123456"
    )
    ids = {
        "campaign_id": send.campaign.api_id,
        "send_id": str(send.pk),
        "segment_id": str(segment.pk),
        "target_id": str(lead.pk),
        "endpoint_id": str(endpoint.pk),
        "delivery_id": str(delivery.pk),
        "test_send_id": str(test_send.pk),
    }
    return key, ids
