"""`manage.py demo_seed`: the demo organization a newcomer starts with, safe to run again."""

import datetime as dt
import io
import json
import zoneinfo

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from audiences.models import Audience, Lead
from campaigns.models import Campaign, Send
from messaging.models import Category, MessageTemplate, WhatsAppNumber
from setter import services
from setter.models import Organization, WebhookSigningKey

pytestmark = pytest.mark.django_db

JSON_KEYS = {
    "organization_id",
    "organization_slug",
    "api_key",
    "signing_secret",
    "admin_username",
    "admin_password",
    "whatsapp_number_id",
    "audience_id",
    "campaign_id",
    "send_ids",
}


def demo_seed(*args) -> dict:
    out = io.StringIO()
    call_command("demo_seed", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


def test_json_has_exactly_the_documented_keys():
    seeded = demo_seed()

    assert set(seeded) == JSON_KEYS
    organization = Organization.objects.get(pk=seeded["organization_id"])
    assert organization.slug == seeded["organization_slug"]
    assert len(seeded["send_ids"]) == 2


def test_running_twice_reuses_everything_and_keeps_the_credentials(settings):
    first = demo_seed()
    second = demo_seed()

    assert second == first
    assert Organization.objects.filter(slug=first["organization_slug"]).count() == 1
    assert Audience.objects.filter(organization_id=first["organization_id"]).count() == 1
    assert Lead.objects.filter(audience_id=first["audience_id"]).count() == 25
    campaign = Campaign.objects.get(organization_id=first["organization_id"])
    assert campaign.sends.count() == 2
    assert WhatsAppNumber.objects.filter(organization=campaign.organization).count() == 1
    assert MessageTemplate.objects.filter(organization=campaign.organization).count() == 2

    assert services.authenticate_api_key(first["api_key"]).organization == campaign.organization
    active_secrets = WebhookSigningKey.objects.active().filter(organization=campaign.organization)
    assert [key.secret for key in active_secrets] == [first["signing_secret"]]
    stored = settings.VAR_DIR / "demo-credentials.json"
    assert stored.stat().st_mode & 0o777 == 0o600
    assert json.loads(stored.read_text())["api_key"] == first["api_key"]


def test_rotate_mints_new_credentials_and_revokes_the_old_ones(client):
    first = demo_seed()
    rotated = demo_seed("--rotate")
    again = demo_seed()

    stable = JSON_KEYS - {"api_key", "signing_secret", "admin_password"}
    assert {key: rotated[key] for key in stable} == {key: first[key] for key in stable}
    for key in ("api_key", "signing_secret", "admin_password"):
        assert rotated[key] != first[key]
    assert again == rotated
    assert services.authenticate_api_key(first["api_key"]) is None
    assert services.authenticate_api_key(rotated["api_key"]) is not None
    organization = Organization.objects.get(pk=first["organization_id"])
    active_secrets = WebhookSigningKey.objects.active().filter(organization=organization)
    assert [key.secret for key in active_secrets] == [rotated["signing_secret"]]
    assert not client.login(username=first["admin_username"], password=first["admin_password"])
    assert client.login(username=rotated["admin_username"], password=rotated["admin_password"])


def test_a_password_the_user_changed_is_never_overwritten(client):
    seeded = demo_seed()
    user = get_user_model().objects.get(username=seeded["admin_username"])
    user.set_password("my-own-password")
    user.save()

    again = demo_seed()
    out = io.StringIO()
    call_command("demo_seed", stdout=out)

    assert again["admin_password"] is None
    assert again["api_key"] == seeded["api_key"]
    assert "demo-admin / (the password you set; demo_seed --rotate mints one)" in out.getvalue()
    assert client.login(username=seeded["admin_username"], password="my-own-password")


def test_lost_stored_credentials_are_minted_again(settings):
    first = demo_seed()
    (settings.VAR_DIR / "demo-credentials.json").unlink()

    again = demo_seed()

    assert again["api_key"] != first["api_key"]
    assert services.authenticate_api_key(first["api_key"]) is None
    assert again["admin_password"] is None  # the user's password is not ours to know or reset


def test_webhook_auth_sets_the_inbound_mode_and_is_kept_until_changed():
    seeded = demo_seed("--webhook-auth", "hmac")
    organization = Organization.objects.get(pk=seeded["organization_id"])
    assert organization.inbound_auth_mode == Organization.InboundAuthMode.HMAC

    demo_seed()
    organization.refresh_from_db()
    assert organization.inbound_auth_mode == Organization.InboundAuthMode.HMAC

    demo_seed("--webhook-auth", "api_key")
    organization.refresh_from_db()
    assert organization.inbound_auth_mode == Organization.InboundAuthMode.API_KEY


def test_an_unknown_webhook_auth_mode_is_refused_and_seeds_nothing():
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("demo_seed", "--webhook-auth", "password", stdout=io.StringIO())
    assert not Organization.objects.exists()


def test_the_demo_campaign_has_two_future_sends_at_ten_in_london():
    seeded = demo_seed()
    first, second = (Send.objects.get(pk=pk) for pk in seeded["send_ids"])
    london = zoneinfo.ZoneInfo("Europe/London")
    tomorrow = timezone.now().astimezone(london).date() + dt.timedelta(days=1)

    assert Campaign.objects.get(pk=seeded["campaign_id"]).status == Campaign.Status.DRAFT
    assert first.scheduled_for == dt.datetime.combine(tomorrow, dt.time(10), london)
    assert second.scheduled_for == first.scheduled_for + dt.timedelta(days=1)
    assert first.scheduled_for > timezone.now()

    assert first.category == Category.MARKETING
    assert first.template.status == MessageTemplate.Status.APPROVED
    assert first.template.body_text == "Hi {{1}}, use code {{2}} for 20% off"
    assert first.parameter_mapping == ["first_name", "variables.coupon"]
    assert first.audience_filter_mode == Send.AudienceFilterMode.WEBHOOK_FILTERED
    assert (first.event_filter_mode, first.event_filter_type) == ("exclude", "purchase")

    assert second.category == Category.UTILITY
    assert second.template.category == Category.UTILITY
    assert second.audience_filter_mode == Send.AudienceFilterMode.OFF
    assert second.event_filter_mode == Send.EventFilterMode.OFF


def test_the_demo_audience_is_ingested_with_coupons_across_three_regions():
    seeded = demo_seed()
    audience = Audience.objects.get(pk=seeded["audience_id"])
    leads = Lead.objects.filter(audience=audience)

    assert audience.status == Audience.Status.READY
    assert audience.total_rows == 25
    assert not leads.filter(ingest_status=Lead.IngestStatus.INVALID_PHONE).exists()
    assert set(leads.values_list("region", flat=True)) == {"GB", "BR", "US"}
    assert set(leads.filter(region="US").values_list("ingest_status", flat=True)) == {
        Lead.IngestStatus.INELIGIBLE_GEO
    }
    assert leads.filter(region="GB", limited_reporting=True).count() == 10
    first = leads.get(external_id="demo-001")
    assert (first.first_name, first.variables["coupon"]) == ("Ana", "SPRING-001")


def test_the_demo_admin_logs_in_and_sees_the_demo_campaign(client):
    seeded = demo_seed()

    assert client.login(username=seeded["admin_username"], password=seeded["admin_password"])
    response = client.get(reverse("admin:campaigns_campaign_changelist"))

    assert response.status_code == 200
    assert [c.pk for c in response.context["cl"].result_list] == [seeded["campaign_id"]]
    user = response.wsgi_request.user
    assert user.is_staff and not user.is_superuser


def test_the_sandbox_number_matches_the_meta_sandbox():
    seeded = demo_seed()
    number = WhatsAppNumber.objects.get(pk=seeded["whatsapp_number_id"])

    assert (number.phone_number_id, number.waba_id, number.access_token) == (
        "100000000000001",
        "200000000000001",
        "sandbox-access-token",
    )
    assert number.messaging_limit == WhatsAppNumber.MessagingLimit.TIER_10K
    assert number.mm_lite_terms_accepted
