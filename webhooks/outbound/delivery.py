"""Delivering outbound webhooks: claim due deliveries, POST each once, schedule the next try.

The database holds the schedule. A claim turns a due delivery `delivering` with a lease in
`next_attempt_at`; a worker that dies mid-request leaves it due again when the lease ends, so
nothing waits in a broker for hours (Redis would redeliver a long-delayed task after its
visibility timeout). Consumers deduplicate on `webhook-id`, as Standard Webhooks asks.
"""

import datetime as dt
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import orjson
import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from webhooks.models import WebhookAttempt, WebhookDelivery

from . import services
from .signing import signature_headers
from .targets import UnsafeTarget, checked_session

logger = logging.getLogger(__name__)

Status = WebhookDelivery.Status
USER_AGENT = "Setter-Campaigns-Webhooks/1.0"
# Due deliveries one beat tick hands out.
CLAIM_BATCH = 100
# Random extra delay on retries (Standard Webhooks recommends jitter), as a fraction.
RETRY_JITTER = 0.1


def _lease() -> dt.timedelta:
    """How long a claim holds a delivery: well past the request timeout."""
    return dt.timedelta(seconds=3 * settings.OUTBOUND_WEBHOOK_TIMEOUT_SECONDS + 30)


def claim_due(*, ids=None, now: dt.datetime | None = None, limit: int = CLAIM_BATCH) -> list[int]:
    """Turn due deliveries (of `ids`, or any) of active endpoints `delivering`; returns the
    ids claimed. SKIP LOCKED keeps concurrent claimers apart on PostgreSQL; the conditional
    update does it on SQLite, whose writes are serialized anyway."""
    now = now or timezone.now()
    due = Q(status__in=(Status.PENDING, Status.DELIVERING), next_attempt_at__lte=now)
    candidates = WebhookDelivery.objects.filter(due, endpoint__is_active=True)
    if ids is not None:
        candidates = candidates.filter(pk__in=ids)
    claimed = []
    with transaction.atomic():
        locked = (
            candidates.select_for_update(skip_locked=True, of=("self",))
            .order_by("next_attempt_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        for pk in list(locked):
            if WebhookDelivery.objects.filter(due, pk=pk).update(
                status=Status.DELIVERING, next_attempt_at=now + _lease()
            ):
                claimed.append(pk)
    return claimed


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    body: str
    error: str
    duration_ms: int


def attempt(delivery_id: int, *, now: dt.datetime | None = None) -> str | None:
    """POST a claimed delivery once and record the attempt; returns the delivery's status
    afterwards (None when it is not claimed)."""
    delivery = (
        WebhookDelivery.objects.select_related("endpoint")
        .filter(pk=delivery_id, status=Status.DELIVERING)
        .first()
    )
    if delivery is None:
        return None
    now = now or timezone.now()
    answer = _post(delivery, now)
    return _record(delivery, answer, now)


def _post(delivery: WebhookDelivery, now: dt.datetime) -> Answer:
    endpoint = delivery.endpoint
    body = orjson.dumps(delivery.payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signature_headers(services.signing_secrets(endpoint, now), delivery.event_id, body, now),
    }
    started = time.monotonic()
    try:
        # Redirects are not followed (Standard Webhooks: a 3xx is a failure; fix the URL), so
        # a public URL cannot bounce the worker to an address the check would refuse. Only the
        # excerpt we store is read from the answer.
        with (
            checked_session() as session,
            session.post(
                endpoint.url,
                data=body,
                headers=headers,
                timeout=settings.OUTBOUND_WEBHOOK_TIMEOUT_SECONDS,
                allow_redirects=False,
                stream=True,
            ) as response,
        ):
            excerpt = response.raw.read(WebhookAttempt.RESPONSE_EXCERPT_CHARS, decode_content=True)
            status_code, error = response.status_code, ""
    except UnsafeTarget as refused:
        status_code, excerpt, error = None, b"", f"Refused: {refused}"
    except requests.RequestException as exc:
        status_code, excerpt, error = None, b"", f"{type(exc).__name__}: {exc}"
    duration_ms = round((time.monotonic() - started) * 1000)
    text = excerpt.decode("utf-8", "replace")[: WebhookAttempt.RESPONSE_EXCERPT_CHARS]
    return Answer(status_code, text, error[:500], duration_ms)


def _record(delivery: WebhookDelivery, answer: Answer, now: dt.datetime) -> str:
    count = delivery.attempt_count + 1
    schedule = settings.OUTBOUND_WEBHOOK_RETRY_SCHEDULE
    succeeded = answer.status_code is not None and 200 <= answer.status_code < 300
    gone = answer.status_code == 410
    fields: dict[str, Any] = {
        "attempt_count": count,
        "last_status_code": answer.status_code,
        "last_error": answer.error or ("" if succeeded else f"HTTP {answer.status_code}"),
    }
    if succeeded:
        fields.update(status=Status.SUCCEEDED, next_attempt_at=None, finished_at=now)
    elif gone or count >= len(schedule):
        fields.update(status=Status.FAILED, next_attempt_at=None, finished_at=now)
    else:
        delay = schedule[count] * (1 + random.uniform(0, RETRY_JITTER))
        fields.update(status=Status.PENDING, next_attempt_at=now + dt.timedelta(seconds=delay))
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            attempted_at=now,
            status_code=answer.status_code,
            response_body=answer.body,
            error=answer.error,
            duration_ms=answer.duration_ms,
        )
        WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
        if gone:
            # Standard Webhooks: 410 Gone means the receiver wants no more events.
            services.disable_endpoint(delivery.endpoint, "The endpoint answered 410 Gone.")
    logger.info(
        "webhook attempt",
        extra={
            "delivery_id": delivery.pk,
            "event_type": delivery.event_type,
            "status_code": answer.status_code,
            "attempt": count,
        },
    )
    return fields["status"]
