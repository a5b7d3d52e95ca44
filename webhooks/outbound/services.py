"""Business rules of outbound webhooks: endpoints and their secrets, events, re-sends.

An event is recorded inside the caller's transaction, so it exists exactly when the state
change it reports committed; delivery starts only after the commit.
"""

import datetime as dt
import uuid
from collections.abc import Callable
from functools import partial

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from setter.models import Organization
from webhooks.models import EventType, WebhookDelivery, WebhookEndpoint

from .signing import generate_secret

# An organization's endpoints are few; the cap keeps the unpaginated list bounded.
MAX_ENDPOINTS_PER_ORGANIZATION = 20
# How long the old secret keeps signing after a rotation.
PREVIOUS_SECRET_GRACE = dt.timedelta(hours=24)


def new_event_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def validate_event_types(event_types) -> list[str]:
    unknown = sorted(set(event_types) - set(EventType.values))
    if unknown:
        raise ValidationError(
            f"Unknown event types {', '.join(unknown)}; known: {', '.join(EventType.values)}."
        )
    return sorted(set(event_types))


def create_endpoint(
    organization: Organization, url: str, *, description: str = "", event_types=()
) -> WebhookEndpoint:
    """A new endpoint with a fresh secret; the caller shows the secret to the partner once."""
    if organization.webhook_endpoints.count() >= MAX_ENDPOINTS_PER_ORGANIZATION:
        raise ValidationError(
            f"An organization has at most {MAX_ENDPOINTS_PER_ORGANIZATION} webhook endpoints."
        )
    endpoint = WebhookEndpoint(
        organization=organization,
        url=url,
        description=description,
        event_types=validate_event_types(event_types),
        secret=generate_secret(),
    )
    endpoint.full_clean()
    endpoint.save()
    return endpoint


def rotate_secret(endpoint: WebhookEndpoint, *, now: dt.datetime | None = None) -> str:
    """A new secret; the old one keeps signing beside it for a day so the partner can switch."""
    now = now or timezone.now()
    endpoint.previous_secret, endpoint.secret = endpoint.secret, generate_secret()
    endpoint.previous_secret_expires_at = now + PREVIOUS_SECRET_GRACE
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return endpoint.secret


def signing_secrets(endpoint: WebhookEndpoint, now: dt.datetime) -> list[str]:
    secrets = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires and expires > now:
        secrets.append(endpoint.previous_secret)
    return secrets


def disable_endpoint(endpoint: WebhookEndpoint, reason: str) -> None:
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        is_active=False, disabled_reason=reason[:200]
    )


def emit_event(
    organization: Organization | int, event_type: str, payload: dict | Callable[[], dict]
) -> list[int]:
    """Record one delivery of the event per active endpoint that wants it; delivery starts
    when the caller's transaction commits. Returns the deliveries' ids.

    `payload` may be a function: the engine's status changes then build the campaign's JSON
    (a few queries) only when some endpoint listens.
    """
    now = timezone.now()
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(organization=organization, is_active=True)
        if endpoint.receives(event_type)
    ]
    if not endpoints:
        return []
    if callable(payload):
        payload = payload()
    event_id = new_event_id()
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            endpoint=endpoint,
            event_id=event_id,
            event_type=event_type,
            payload=payload,
            next_attempt_at=now,
        )
        for endpoint in endpoints
    )
    ids = [delivery.pk for delivery in deliveries]
    _deliver_after_commit(ids)
    return ids


def resend(delivery: WebhookDelivery, *, now: dt.datetime | None = None) -> bool:
    """Queue a delivery again from the start of the retry schedule, same event id; refused
    (False) while a worker is delivering it."""
    now = now or timezone.now()
    with transaction.atomic():
        queued = (
            WebhookDelivery.objects.filter(pk=delivery.pk)
            .exclude(status=WebhookDelivery.Status.DELIVERING)
            .update(
                status=WebhookDelivery.Status.PENDING,
                attempt_count=0,
                next_attempt_at=now,
                finished_at=None,
            )
        )
        if queued:
            _deliver_after_commit([delivery.pk])
    delivery.refresh_from_db()
    return bool(queued)


def _deliver_after_commit(ids: list[int]) -> None:
    from webhooks.tasks import queue_deliveries

    # robust: a broker hiccup must not fail the engine's committed work; beat's webhook tick
    # picks the deliveries up instead.
    transaction.on_commit(partial(queue_deliveries, ids), robust=True)
