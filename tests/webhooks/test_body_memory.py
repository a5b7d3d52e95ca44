"""Hostile bodies cost no lasting memory: credentials are checked before a body is parsed, an
over-limit body is refused by its size, and no parsed body outlives its request.

The server is the real WSGI stack on a socket in this process (live_server), so the process's
RSS is the server's."""

import gc

import orjson
import pytest
import requests

from setter.models import Organization
from setter.services import create_api_key, create_signing_key, sign_body
from tests.factories import CampaignFactory, OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)

FILTER_PATH = "/api/v1/webhooks/campaigns/audience-filter"
EVENTS_PATH = "/api/v1/webhooks/lead-events"
SEGMENTS_PATH = "/api/v1/segments"
RSS_BUDGET_BYTES = 64 * 1024 * 1024
ROUNDS = 20


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def filter_body(campaign_id: int, leads: int) -> bytes:
    """campaignId first, as in the seed, then `leads` short external ids (just under 16 MiB
    for 700,000)."""
    ids = [{"externalId": f"{n % 100_000:05d}"} for n in range(leads)]
    return orjson.dumps({"campaignId": campaign_id, "sendId": 1, "mode": "include", "leads": ids})


def persons_body(persons: int) -> bytes:
    people = [
        {"externalId": f"p{n}", "phone": f"+4420794{n % 100_000:05d}", "firstName": "Ana"}
        for n in range(persons)
    ]
    return orjson.dumps({"name": "too many", "persons": people})


@pytest.fixture
def hostile_requests(live_server):
    """Each a (method, url, body, headers, expected status) a stranger or a careless partner
    might send; the bodies are built once, before any measurement."""
    hmac_org = OrganizationFactory(inbound_auth_mode=Organization.InboundAuthMode.HMAC)
    create_signing_key(hmac_org, "real")
    campaign = CampaignFactory(organization=hmac_org)
    key_org = OrganizationFactory()
    api_key = create_api_key(key_org, "CRM")[1]

    big_filter = filter_body(campaign.pk, 700_000)
    assert 15_000_000 < len(big_filter) < 16 * 1024 * 1024
    wrong_signature = {"X-Setter-Signature": "sha256=" + sign_body("whsec_guess", big_filter)}
    too_many_persons = persons_body(60_000)
    events = orjson.dumps({"events": [{"phoneE164": "+15551234567"}] * 400_000})
    json_type = {"Content-Type": "application/json"}
    url = live_server.url
    return [
        (FILTER_PATH, big_filter, {**json_type, **wrong_signature}, 401),
        (FILTER_PATH, big_filter, {**json_type, "Authorization": "Bearer sk_guess"}, 401),
        (EVENTS_PATH, events, json_type, 401),
        (SEGMENTS_PATH, too_many_persons, {**json_type, "x-api-key": api_key}, 400),
        (SEGMENTS_PATH, too_many_persons, {**json_type, "x-api-key": "sk_guess"}, 401),
        (FILTER_PATH, big_filter + b" " * (2 * 1024 * 1024), json_type, 413),
    ], url


def test_twenty_rounds_of_hostile_bodies_leave_rss_within_64_mb(hostile_requests):
    cases, url = hostile_requests
    with requests.Session() as session:

        def send_all():
            for path, body, headers, expected in cases:
                answer = session.post(url + path, data=body, headers=headers, timeout=60)
                assert answer.status_code == expected, (path, answer.status_code, answer.text)
                answer.close()

        send_all()  # warm-up: imports, connection pools, first-use caches
        gc.collect()
        baseline = rss_bytes()
        for _ in range(ROUNDS):
            send_all()
        grown = rss_bytes() - baseline

    assert grown < RSS_BUDGET_BYTES, f"RSS grew {grown / 2**20:.0f} MB over {ROUNDS} rounds"
