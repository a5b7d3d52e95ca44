"""`manage.py demo_seed`: the demo organization a newcomer starts with, safe to run again."""

import datetime as dt
import io
import json
import zoneinfo

import pytest
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


def test_running_twice_reuses_everything_but_rotates_the_secrets():
    first = demo_seed()
    second = demo_seed()

    stable = JSON_KEYS - {"api_key", "signing_secret", "admin_password"}
    assert {key: second[key] for key in stable} == {key: first[key] for key in stable}
    assert Organization.objects.filter(slug=first["organization_slug"]).count() == 1
    assert Audience.objects.filter(organization_id=first["organization_id"]).count() == 1
    assert Lead.objects.filter(audience_id=first["audience_id"]).count() == 25
    campaign = Campaign.objects.get(organization_id=first["organization_id"])
    assert campaign.sends.count() == 2
    assert WhatsAppNumber.objects.filter(organization=campaign.organization).count() == 1
    assert MessageTemplate.objects.filter(organization=campaign.organization).count() == 2

    assert services.authenticate_api_key(first["api_key"]) is None
    assert services.authenticate_api_key(second["api_key"]).organization == campaign.organization
    active_secrets = WebhookSigningKey.objects.active().filter(organization=campaign.organization)
    assert [key.secret for key in active_secrets] == [second["signing_secret"]]
    assert second["admin_password"] != first["admin_password"]


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
