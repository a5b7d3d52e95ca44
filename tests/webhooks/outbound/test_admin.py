"""The outbound webhooks in the admin: an endpoint's secret shown once, rotation, the delivery
log with its attempts, re-send, and one organization never seeing another's."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from tests.factories import OrganizationFactory, UserFactory
from webhooks.models import EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.outbound import services
from webhooks.outbound.signing import SECRET_PREFIX

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, organization):
    client.force_login(UserFactory(organization=organization))


def delivered(endpoint, status=WebhookDelivery.Status.FAILED):
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id="msg_0a1b",
        event_type=EventType.CAMPAIGN_COMPLETED,
        payload={"type": "campaign.completed", "campaign": {"status": "completed"}},
        status=status,
        attempt_count=8,
    )
    WebhookAttempt.objects.create(
        delivery=delivery,
        attempted_at=delivery.created_at,
        status_code=502,
        response_body="upstream down",
    )
    return delivery


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_adding_an_endpoint_shows_its_secret_once(client, staff, organization):
    response = client.post(
        reverse("admin:webhooks_webhookendpoint_add"),
        {
            "organization": organization.pk,
            "url": "https://crm.example.com/setter",
            "description": "CRM",
            "event_types": ["campaign.started", "campaign.completed"],
            "is_active": "on",
        },
        follow=True,
    )

    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.event_types == ["campaign.completed", "campaign.started"]
    assert endpoint.secret.startswith(SECRET_PREFIX)
    assert any(endpoint.secret in message for message in messages_of(response))
    change = client.get(reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk]))
    assert change.status_code == 200 and endpoint.secret not in change.content.decode()


def test_rotating_keeps_the_old_secret_signing_for_a_while(client, staff, organization):
    endpoint = services.create_endpoint(organization, "https://crm.example.com/setter")
    old = endpoint.secret

    response = client.post(
        reverse("admin:webhooks_webhookendpoint_changelist"),
        {"action": "rotate_secret", "_selected_action": [endpoint.pk]},
        follow=True,
    )

    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.previous_secret == old
    assert any(endpoint.secret in message for message in messages_of(response))
    assert services.signing_secrets(endpoint, endpoint.created_at) == [endpoint.secret, old]


def test_the_delivery_log_shows_attempts_and_resends(client, staff, organization):
    delivery = delivered(services.create_endpoint(organization, "https://crm.example.com/h"))

    listing = client.get(reverse("admin:webhooks_webhookdelivery_changelist"))
    page = client.get(reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]))

    assert listing.status_code == 200 and "msg_0a1b" in listing.content.decode()
    assert page.status_code == 200
    assert "upstream down" in page.content.decode() and "502" in page.content.decode()
    client.post(
        reverse("admin:webhooks_webhookdelivery_changelist"),
        {"action": "resend", "_selected_action": [delivery.pk]},
    )
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count) == (WebhookDelivery.Status.PENDING, 0)
    assert delivery.event_id == "msg_0a1b" and delivery.attempts.count() == 1


def test_another_organizations_endpoints_and_deliveries_are_invisible(client, staff):
    foreign = services.create_endpoint(OrganizationFactory(), "https://other.example.com/h")
    delivery = delivered(foreign)

    for name, pk in [("webhookendpoint", foreign.pk), ("webhookdelivery", delivery.pk)]:
        listing = client.get(reverse(f"admin:webhooks_{name}_changelist"))
        assert listing.status_code == 200 and "other.example.com" not in listing.content.decode()
        page = client.get(reverse(f"admin:webhooks_{name}_change", args=[pk]))
        assert page.status_code == 302  # the admin's "does not exist" redirect
