"""Who may call the partner webhooks: each organization in its own mode, and nobody else.

A failed credential is a 401 with a JSON body and stores nothing; under HMAC an id that does
not exist answers exactly like a bad signature, so no answer tells about other organizations.
"""

import shutil
import subprocess

import pytest

from audiences.models import LeadEvent
from campaigns.models import AudienceFilterEvent
from setter.models import Organization, WebhookSigningKey
from setter.services import create_api_key, create_signing_key, revoke_api_key, revoke_signing_key
from tests.factories import CampaignFactory, OrganizationFactory, SendFactory

from .conftest import EVENTS_URL, FILTER_URL, Partner, filter_payload, filterable_send

pytestmark = pytest.mark.django_db

SEED_SECRET = "your-signing-secret"
SEED_BODY = '{"campaignId":42,"sendId":137,"mode":"include","leads":[{"externalId":"abc123"}]}'
# Seed 000's recipe, verbatim apart from the URL. Machines without xxd hex-encode with
# openssl itself (`-hex`), which prints the same digits after "= ".
SEED_RECIPE = """
SIG=$(printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$SECRET" -binary | xxd -p -c 256)
"""
RECIPE_WITHOUT_XXD = """
SIG=$(printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$SECRET" -hex | sed 's/^.*= //')
"""
SEED_CURL = """
curl -sS -X POST "$URL/api/v1/webhooks/campaigns/audience-filter" \\
  -H "Content-Type: application/json" \\
  -H "X-Setter-Signature: sha256=$SIG" \\
  --data-raw "$BODY" -w '\\n%{http_code}'
"""

UNAUTHORIZED_SIGNATURE = {
    "error": "unauthorized",
    "detail": "The request signature does not match an active signing key.",
}


def assert_unauthorized(response):
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "unauthorized"
    assert AudienceFilterEvent.objects.count() == 0
    assert LeadEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_the_seeds_openssl_recipe_is_accepted_over_http(live_server):
    """The seed's example body, secret and shell pipeline, posted with curl to a real socket."""
    organization = OrganizationFactory(inbound_auth_mode=Organization.InboundAuthMode.HMAC)
    WebhookSigningKey.objects.create(organization=organization, name="seed", secret=SEED_SECRET)
    campaign = CampaignFactory(id=42, organization=organization)
    SendFactory(id=137, campaign=campaign, audience_filter_mode="webhook_filtered")
    recipe = SEED_RECIPE if shutil.which("xxd") else RECIPE_WITHOUT_XXD

    completed = subprocess.run(
        ["bash", "-c", recipe + SEED_CURL],
        env={"PATH": "/usr/bin:/bin", "SECRET": SEED_SECRET, "BODY": SEED_BODY,
             "URL": live_server.url},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )  # fmt: skip

    body, status = completed.stdout.rsplit("\n", 1)
    assert (status, body) == ("200", '{"status":"accepted","leadCount":1}')
    assert AudienceFilterEvent.objects.get().external_ids == ["abc123"]


def test_rotation_any_active_signing_key_signs_and_a_revoked_one_does_not(
    hmac_partner, post_webhook
):
    send = filterable_send(hmac_partner.organization)
    old_key = hmac_partner.organization.signing_keys.get()
    new_key = create_signing_key(hmac_partner.organization, "v2")

    def post_signed_with(key, external_id):
        payload = filter_payload(send, leads=[{"externalId": external_id}])
        return post_webhook(
            FILTER_URL, payload, lambda body: hmac_partner.signature(body, key.secret)
        )

    assert post_signed_with(old_key, "a").status_code == 200
    assert post_signed_with(new_key, "b").status_code == 200
    revoke_signing_key(old_key)
    refused = post_signed_with(old_key, "c")
    assert post_signed_with(new_key, "d").status_code == 200

    assert refused.status_code == 401
    assert refused.json() == UNAUTHORIZED_SIGNATURE
    stored = AudienceFilterEvent.objects.values_list("external_ids", flat=True)
    assert sorted(ids[0] for ids in stored) == ["a", "b", "d"]


def test_a_signature_over_another_body_fails(hmac_partner, post_webhook):
    send = filterable_send(hmac_partner.organization)
    signed_for = hmac_partner.signature(b'{"campaignId": 1}')

    response = post_webhook(FILTER_URL, filter_payload(send), signed_for)

    assert response.json() == UNAUTHORIZED_SIGNATURE
    assert_unauthorized(response)


def test_another_organizations_signature_answers_like_an_unknown_campaign(
    hmac_partner, post_webhook
):
    victim = OrganizationFactory(inbound_auth_mode=Organization.InboundAuthMode.HMAC)
    create_signing_key(victim, "victim")
    victim_send = filterable_send(victim)
    own_send = filterable_send(hmac_partner.organization)

    on_foreign_campaign = post_webhook(
        FILTER_URL, filter_payload(victim_send), hmac_partner.signature
    )
    on_missing_campaign = post_webhook(
        FILTER_URL,
        {**filter_payload(own_send), "campaignId": victim_send.campaign_id + 1000},
        hmac_partner.signature,
    )

    assert on_foreign_campaign.json() == on_missing_campaign.json() == UNAUTHORIZED_SIGNATURE
    assert_unauthorized(on_foreign_campaign)
    assert_unauthorized(on_missing_campaign)


def test_an_organization_answers_only_in_its_own_mode(hmac_partner, api_key_partner, post_webhook):
    hmac_send = filterable_send(hmac_partner.organization)
    api_key_send = filterable_send(api_key_partner.organization)
    create_signing_key(api_key_partner.organization, "unused")
    _, hmac_orgs_api_key = create_api_key(hmac_partner.organization, "unused")

    bearer_to_hmac_org = post_webhook(
        FILTER_URL, filter_payload(hmac_send), {"Authorization": f"Bearer {hmac_orgs_api_key}"}
    )
    signature_to_api_key_org = post_webhook(
        FILTER_URL,
        filter_payload(api_key_send),
        lambda body: Partner(
            api_key_partner.organization,
            signing_secret=api_key_partner.organization.signing_keys.get().secret,
        ).signature(body),
    )

    assert_unauthorized(bearer_to_hmac_org)
    assert "HMAC" in bearer_to_hmac_org.json()["detail"]
    assert signature_to_api_key_org.json() == UNAUTHORIZED_SIGNATURE
    assert_unauthorized(signature_to_api_key_org)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no credentials"),
        pytest.param({"Authorization": "Bearer sk_not-a-key"}, id="unknown key"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="not bearer"),
        pytest.param({"Authorization": "Bearer "}, id="empty key"),
        pytest.param({"X-Setter-Signature": "sha256=00"}, id="bad signature"),
        pytest.param({"X-Setter-Signature": "md5=abc"}, id="wrong algorithm"),
    ],
)
def test_missing_or_wrong_credentials_get_401(api_key_partner, post_webhook, headers):
    send = filterable_send(api_key_partner.organization)

    response = post_webhook(FILTER_URL, filter_payload(send), headers)

    assert_unauthorized(response)


def test_a_revoked_api_key_gets_401(api_key_partner, post_webhook):
    send = filterable_send(api_key_partner.organization)
    revoke_api_key(api_key_partner.organization.api_keys.get())

    response = post_webhook(FILTER_URL, filter_payload(send), api_key_partner.bearer())

    assert_unauthorized(response)
    assert response.json()["detail"] == "The API key is missing, unknown or revoked."


def test_any_active_api_key_of_the_organization_works(api_key_partner, post_webhook):
    send = filterable_send(api_key_partner.organization)
    _, second_key = create_api_key(api_key_partner.organization, "second system")

    response = post_webhook(
        FILTER_URL, filter_payload(send), {"Authorization": f"Bearer {second_key}"}
    )

    assert response.status_code == 200
    assert api_key_partner.organization.api_keys.filter(last_used_at__isnull=False).count() == 1


def test_credentials_are_checked_before_the_body(api_key_partner, post_webhook):
    response = post_webhook(FILTER_URL, b"{not json", {"Authorization": "Bearer sk_wrong"})

    assert_unauthorized(response)


# Lead events under HMAC name their organization with X-Setter-Organization.


def signed_events(partner, slug=None):
    def headers(body):
        named = {"X-Setter-Organization": slug} if slug is not None else {}
        return {**partner.signature(body), **named}

    return headers


EVENT = {"phoneE164": "+15551234567", "eventType": "purchase", "occurredAt": "2026-01-02T03:04:05Z"}


def test_signed_lead_events_need_the_organization_header(hmac_partner, post_webhook):
    slug = hmac_partner.organization.slug

    without_header = post_webhook(EVENTS_URL, EVENT, signed_events(hmac_partner))
    unknown_slug = post_webhook(EVENTS_URL, EVENT, signed_events(hmac_partner, "no-such-org"))
    assert_unauthorized(without_header)
    assert_unauthorized(unknown_slug)
    assert without_header.json() == unknown_slug.json() == UNAUTHORIZED_SIGNATURE

    accepted = post_webhook(EVENTS_URL, EVENT, signed_events(hmac_partner, slug))
    assert accepted.status_code == 200
    assert LeadEvent.objects.get().organization == hmac_partner.organization


def test_signing_for_another_organizations_slug_fails(hmac_partner, post_webhook):
    victim = OrganizationFactory(inbound_auth_mode=Organization.InboundAuthMode.HMAC)
    create_signing_key(victim, "victim")

    response = post_webhook(EVENTS_URL, EVENT, signed_events(hmac_partner, victim.slug))

    assert response.json() == UNAUTHORIZED_SIGNATURE
    assert_unauthorized(response)


def test_lead_events_land_only_in_the_callers_organization(api_key_partner, post_webhook):
    other = OrganizationFactory()
    _, other_key = create_api_key(other, "other")

    post_webhook(EVENTS_URL, EVENT, api_key_partner.bearer())
    second = post_webhook(EVENTS_URL, EVENT, {"Authorization": f"Bearer {other_key}"})

    # The same event in another organization is its own row, not a duplicate of ours.
    assert second.json()["accepted"] == 1
    assert sorted(LeadEvent.objects.values_list("organization_id", flat=True)) == sorted(
        [api_key_partner.organization.pk, other.pk]
    )


def test_lead_events_with_a_revoked_key_store_nothing(api_key_partner, post_webhook):
    revoke_api_key(api_key_partner.organization.api_keys.get())

    response = post_webhook(EVENTS_URL, {"events": [EVENT]}, api_key_partner.bearer())

    assert_unauthorized(response)


def test_under_hmac_a_filter_without_a_campaign_id_is_a_400_naming_it(hmac_partner, post_webhook):
    response = post_webhook(
        FILTER_URL, {"sendId": 1, "mode": "include", "leads": []}, hmac_partner.signature
    )

    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["campaignId"]
    assert AudienceFilterEvent.objects.count() == 0
