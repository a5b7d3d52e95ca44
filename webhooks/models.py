"""Outbound webhooks: the partner's endpoints, one delivery per event and endpoint, and every
attempt at it. (The inbound webhooks store their data in the apps they feed; only the count of
refused Meta status reports lives here.)

Deliveries are driven from the database, not by long Celery countdowns: `next_attempt_at` says
when a delivery is due, and beat's webhook tick hands due ones to workers.
"""

from django.core.validators import URLValidator
from django.db import models

from setter.models import Organization

from .outbound.targets import validate_webhook_url


class EventType(models.TextChoices):
    CAMPAIGN_STARTED = "campaign.started", "Campaign started"
    CAMPAIGN_COMPLETED = "campaign.completed", "Campaign completed"
    CAMPAIGN_STOPPED = "campaign.stopped", "Campaign stopped"
    SEND_STARTED = "send.started", "Send started"
    SEND_COMPLETED = "send.completed", "Send completed"
    SEND_PAUSED = "send.paused", "Send paused by the engine"


class WebhookEndpoint(models.Model):
    """A partner URL that receives the organization's events, signed with its own secret."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(
        max_length=2000,
        validators=[URLValidator(schemes=["http", "https"]), validate_webhook_url],
    )
    description = models.CharField(max_length=200, blank=True)
    # Standard Webhooks form, `whsec_<base64>`. Kept readable because signing needs it; shown
    # to the partner once, never logged.
    secret = models.CharField(max_length=128, editable=False)
    # After a rotation the old secret signs too, until it expires, so the partner can switch
    # without rejecting a single event.
    previous_secret = models.CharField(max_length=128, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    event_types = models.JSONField(
        default=list, blank=True, help_text="Event types to receive; none selected means all."
    )
    is_active = models.BooleanField(
        "active", default=True, help_text="Inactive endpoints keep their deliveries waiting."
    )
    disabled_reason = models.CharField(max_length=200, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.url

    def receives(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookDelivery(models.Model):
    """One event for one endpoint, retried until it succeeds or the schedule runs out."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERING = "delivering", "Delivering"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    organization_path = "endpoint__organization"

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.CharField(
        max_length=40, db_index=True, help_text="The webhook-id header: the same on every try."
    )
    event_type = models.CharField(max_length=64, choices=EventType.choices)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempt_count = models.PositiveSmallIntegerField(default=0)
    # When it is due: the next try while pending, the end of a worker's lease while delivering.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event_id"], name="one_delivery_per_event_and_endpoint"
            )
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due")]

    def __str__(self):
        return f"{self.event_type} {self.event_id}"


class WebhookAttempt(models.Model):
    """One HTTP request of a delivery and what the partner answered."""

    organization_path = "delivery__endpoint__organization"
    RESPONSE_EXCERPT_CHARS = 1000

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.CharField(max_length=RESPONSE_EXCERPT_CHARS, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["attempted_at", "id"]

    def __str__(self):
        return f"{self.status_code or self.error} at {self.attempted_at:%Y-%m-%d %H:%M:%S}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class RejectedStatusCount(models.Model):
    """How many of Meta's status reports were refused, per offending field, since install.

    A bad report is skipped so the rest of its delivery still applies (Meta would redeliver
    the whole batch after a 500). Kept in the database because the webhook lands on any web
    process while /metrics may be scraped from another.
    """

    field = models.CharField(max_length=64, unique=True)
    count = models.BigIntegerField(default=0)

    def __str__(self):
        return f"{self.field}: {self.count}"
