"""Partner-webhook fixtures: organizations in each auth mode, their credentials, and a send
that takes audience filters."""

from dataclasses import dataclass

import orjson
import pytest

from campaigns.models import Send
from setter.models import Organization
from setter.services import create_api_key, create_signing_key, sign_body
from tests.factories import OrganizationFactory, SendFactory

FILTER_URL = "/api/v1/webhooks/campaigns/audience-filter"
EVENTS_URL = "/api/v1/webhooks/lead-events"


@dataclass
class Partner:
    """An organization as its partner system sees it: the credentials it holds."""

    organization: Organization
    api_key: str = ""
    signing_secret: str = ""

    def bearer(self) -> dict:
        return {"Authorization": f"Bearer {self.api_key}"}

    def signature(self, body: bytes, secret: str | None = None) -> dict:
        return {"X-Setter-Signature": "sha256=" + sign_body(secret or self.signing_secret, body)}


def body_of(payload) -> bytes:
    return payload if isinstance(payload, bytes) else orjson.dumps(payload)


@pytest.fixture
def api_key_partner(db) -> Partner:
    organization = OrganizationFactory()
    _, raw_key = create_api_key(organization, "partner CRM")
    return Partner(organization, api_key=raw_key)


@pytest.fixture
def hmac_partner(db) -> Partner:
    organization = OrganizationFactory(inbound_auth_mode=Organization.InboundAuthMode.HMAC)
    return Partner(organization, signing_secret=create_signing_key(organization, "v1").secret)


def filterable_send(organization, **kwargs) -> Send:
    """A pending send one day out, "Apply filter from inbound webhook" on unless told."""
    kwargs.setdefault("audience_filter_mode", Send.AudienceFilterMode.WEBHOOK_FILTERED)
    return SendFactory(campaign__organization=organization, **kwargs)


def filter_payload(send: Send, mode="include", leads=None) -> dict:
    return {
        "campaignId": send.campaign_id,
        "sendId": send.pk,
        "mode": mode,
        "leads": leads if leads is not None else [{"externalId": "abc123"}],
    }


@pytest.fixture
def post_webhook(client):
    """POST a payload (dict or raw bytes) as JSON; headers=... may be a function of the body."""

    def post(url, payload, headers=None):
        body = body_of(payload)
        if callable(headers):
            headers = headers(body)
        return client.post(url, body, content_type="application/json", headers=headers or {})

    return post
