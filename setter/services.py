"""Credentials: minting, verifying and revoking API keys and webhook signing keys."""

import hashlib
import hmac
import secrets

from django.utils import timezone

from .models import ApiKey, Organization, WebhookSigningKey

API_KEY_PREFIX = "sk_"


def hash_api_key(raw_key: str) -> str:
    # Keys carry 256 bits of randomness, so a fast unsalted digest is safe and lets the
    # lookup be a single indexed equality.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def create_api_key(organization: Organization, name: str) -> tuple[ApiKey, str]:
    """Mint a key; the raw value is returned once and never stored."""
    raw_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        organization=organization,
        name=name,
        prefix=raw_key[:10],
        key_hash=hash_api_key(raw_key),
    )
    return api_key, raw_key


def authenticate_api_key(raw_key: str) -> ApiKey | None:
    """The active key matching raw_key, with last_used_at touched; None otherwise."""
    if not raw_key:
        return None
    api_key = (
        ApiKey.objects.active()
        .select_related("organization")
        .filter(key_hash=hash_api_key(raw_key))
        .first()
    )
    if api_key is None:
        return None
    now = timezone.now()
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
    return api_key


def authenticate_bearer(authorization: str | None) -> ApiKey | None:
    """The active key of an `Authorization: Bearer <key>` header; None for any other header."""
    scheme, _, raw_key = (authorization or "").partition(" ")
    return authenticate_api_key(raw_key.strip()) if scheme.lower() == "bearer" else None


def revoke_api_key(api_key: ApiKey) -> None:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])


def create_signing_key(organization: Organization, name: str) -> WebhookSigningKey:
    return WebhookSigningKey.objects.create(
        organization=organization, name=name, secret="whsec_" + secrets.token_hex(32)
    )


def revoke_signing_key(signing_key: WebhookSigningKey) -> None:
    if signing_key.revoked_at is None:
        signing_key.revoked_at = timezone.now()
        signing_key.save(update_fields=["revoked_at"])


def sign_body(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(organization: Organization, body: bytes, header_value: str) -> bool:
    """True if header_value (`sha256=<hex>`) signs body with any active key of the organization."""
    if not header_value or not header_value.startswith("sha256="):
        return False
    provided = header_value.removeprefix("sha256=").strip().lower()
    matched = False
    for secret in (
        WebhookSigningKey.objects.active()
        .filter(organization=organization)
        .values_list("secret", flat=True)
    ):
        # Compare against every key so timing does not reveal which one matched.
        matched |= hmac.compare_digest(sign_body(secret, body), provided)
    return matched


# The organization's settings the REST API may change (campaigns.api.delivery_settings); the
# admin's organization page edits the same fields through the same model validators.
DELIVERY_SETTINGS = (
    "default_time_zone",
    "frequency_cap_messages",
    "frequency_cap_days",
    "frequency_cap_utility",
    "guard_failure_percent",
    "guard_failure_window",
    "guard_stop_percent",
    "window_start",
    "window_end",
    "window_days",
    "window_outside",
)


def update_delivery_settings(organization: Organization, changes: dict) -> Organization:
    """Write `changes` (model field → value, of DELIVERY_SETTINGS) after the model's own
    validators, or raise ValidationError by field and change nothing."""
    unknown = set(changes) - set(DELIVERY_SETTINGS)
    if unknown:
        raise ValueError(f"not a delivery setting: {sorted(unknown)}")
    candidate = Organization.objects.get(pk=organization.pk)
    for name, value in changes.items():
        setattr(candidate, name, value)
    exclude = [f.name for f in Organization._meta.concrete_fields if f.name not in changes]
    candidate.clean_fields(exclude=exclude)
    candidate.clean()
    candidate.save(update_fields=list(changes))
    for name in changes:
        setattr(organization, name, getattr(candidate, name))
    return organization
