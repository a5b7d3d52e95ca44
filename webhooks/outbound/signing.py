"""Standard Webhooks signatures (https://www.standardwebhooks.com, spec 1.0.0, symmetric scheme).

The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the signature is the base64 of
its HMAC-SHA256 under the secret's bytes (the base64 after `whsec_`), sent as `v1,<base64>`.
Space-separated signatures are allowed so an old and a new secret can both sign during a
rotation. `verify` is what partners (and our tests) run on a delivery.
"""

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping

SECRET_PREFIX = "whsec_"
# The spec asks for 24 to 64 random bytes.
SECRET_BYTES = 32
SIGNATURE_VERSION = "v1"
# The spec's (and its reference libraries') replay window.
DEFAULT_TOLERANCE = dt.timedelta(minutes=5)

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


class WebhookVerificationError(Exception):
    """The delivery is not authentic or not fresh: answer it with a 4xx and ignore it."""


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as error:
        raise ValueError("A signing secret is whsec_ followed by base64.") from error


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of body, as sent at `timestamp` (unix seconds)."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signature_headers(
    secrets_: Iterable[str], msg_id: str, body: bytes, sent_at: dt.datetime
) -> dict[str, str]:
    """The three Standard Webhooks headers, one signature per secret (current one first)."""
    timestamp = int(sent_at.timestamp())
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets_),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: dt.timedelta = DEFAULT_TOLERANCE,
    now: dt.datetime | None = None,
) -> None:
    """Raise WebhookVerificationError unless one `v1` signature in the headers matches body
    under secret and the timestamp is within `tolerance` of now (either way: a timestamp from
    the future is as suspect as an old one)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        msg_id = lowered[ID_HEADER]
        timestamp = int(lowered[TIMESTAMP_HEADER])
        signatures = lowered[SIGNATURE_HEADER].split()
    except KeyError as missing:
        raise WebhookVerificationError(f"Missing header {missing.args[0]}") from None
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not unix seconds") from None
    now = now or dt.datetime.now(dt.UTC)
    if abs(now.timestamp() - timestamp) > tolerance.total_seconds():
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance")
    expected = sign(secret, msg_id, timestamp, body).encode()
    if not any(hmac.compare_digest(expected, candidate.encode()) for candidate in signatures):
        raise WebhookVerificationError("No matching signature")
