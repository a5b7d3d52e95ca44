"""Tenancy: organizations, who belongs to them, and the credentials partners use to reach them."""

import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from .send_windows import SendWindowFields


def validate_time_zone(name: str) -> None:
    """An IANA zone this system knows (the editor offers and accepts the same list)."""
    if name and name not in zoneinfo.available_timezones():
        raise ValidationError(f"{name!r} is not an IANA time zone, e.g. Europe/London.")


class Organization(SendWindowFields):
    """A tenant. Its send window (SendWindowFields) is the default of its campaigns."""

    class InboundAuthMode(models.TextChoices):
        API_KEY = "api_key", "API key (Bearer)"
        HMAC = "hmac", "HMAC signature (X-Setter-Signature)"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    inbound_auth_mode = models.CharField(
        max_length=16,
        choices=InboundAuthMode.choices,
        default=InboundAuthMode.API_KEY,
        help_text="How partners authenticate the inbound webhooks (audience filter, lead events).",
    )
    # Issue 16.3: a phone gets at most this many messages in any rolling window of
    # `frequency_cap_days`, across all the organization's campaigns. Off when empty.
    frequency_cap_messages = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        verbose_name="frequency cap (messages)",
        help_text=(
            "At most this many marketing messages per phone in the rolling window below, across "
            "all campaigns; recipients over it are skipped with reason frequency_cap. Empty: no cap."
        ),
    )
    frequency_cap_days = models.PositiveSmallIntegerField(
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        verbose_name="frequency cap window (days)",
        help_text="The rolling window of the frequency cap, in days before each send's fire time.",
    )
    frequency_cap_utility = models.BooleanField(
        default=False,
        verbose_name="cap utility sends too",
        help_text="Utility sends are not capped (nor counted) unless this is on.",
    )
    # Issue 16.4: the quality guard pauses a running send before the number's quality suffers.
    guard_failure_percent = models.PositiveSmallIntegerField(
        default=20,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        verbose_name="pause at recipient-permanent failures (%)",
        help_text=(
            "A running send pauses when more than this share of Meta's last answers (the window "
            "below) are recipient-permanent failures (undeliverable, blocked, stopped marketing)."
        ),
    )
    guard_failure_window = models.PositiveIntegerField(
        default=200,
        validators=[MinValueValidator(20), MaxValueValidator(10_000)],
        verbose_name="failure window (answers)",
        help_text="How many of a worker's latest answers for a send the failure share is taken over.",
    )
    guard_stop_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("2.00"),
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("100"))],
        verbose_name="pause at STOP replies (%)",
        help_text=(
            "A send pauses when STOP replies from its recipients within an hour of its start "
            "pass this share of the messages it sent (counted from 100 messages sent)."
        ),
    )
    default_time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_time_zone],
        help_text="IANA zone a new send starts in, e.g. Europe/London. Blank: the zone of the "
        "country of the organization's first WhatsApp number (UTC without one).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Membership(models.Model):
    """A staff user working inside an organization; the admin shows them only its objects."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="unique_membership")
        ]

    def __str__(self):
        return f"{self.user} @ {self.organization}"


class ApiKeyQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """An organization-level API key. The key itself is shown once; only its hash is kept."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="Visible start of the key, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self):
        return self.revoked_at is None


class WebhookSigningKeyQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class WebhookSigningKey(models.Model):
    """A shared secret for HMAC-signed inbound webhooks. Several may be active during rotation.

    Unlike API keys the secret must stay readable: verifying an HMAC needs the secret itself.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="signing_keys"
    )
    name = models.CharField(max_length=100)
    secret = models.CharField(max_length=128, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = WebhookSigningKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.secret[:6]}…)"

    @property
    def is_active(self):
        return self.revoked_at is None
