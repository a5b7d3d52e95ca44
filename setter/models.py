"""Tenancy: organizations, who belongs to them, and the credentials partners use to reach them."""

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


def validate_time_zone(name: str) -> None:
    """An IANA zone this system knows (the editor offers and accepts the same list)."""
    if name and name not in zoneinfo.available_timezones():
        raise ValidationError(f"{name!r} is not an IANA time zone, e.g. Europe/London.")


class Organization(models.Model):
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
