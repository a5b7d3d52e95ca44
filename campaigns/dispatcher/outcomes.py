"""What an attempt that did not end in `sent` comes to: a retry with backoff, or a failure
with Meta's code once the recipient's attempts ran out."""

import datetime as dt

from django.conf import settings
from django.utils import timezone

from messaging import errors

from ..recipients import Outcome


def failure(
    recipient,
    error,
    *,
    verdict: errors.RecipientVerdict | None = None,
    refused=False,
    permanent=False,
) -> Outcome:
    return Outcome(
        recipient.pk,
        "failed",
        error_code=str(getattr(error, "code", "") or ""),
        error_title=(getattr(error, "title", "") or str(error))[:255],
        error_detail=str(getattr(error, "details", "") or ""),
        answered=getattr(error, "http_status", None) is not None,
        refused=refused,
        verdict=verdict or errors.RecipientVerdict(),
        permanent=permanent,
    )


def retry(
    recipient,
    error,
    *,
    minimum: float = 0.0,
    attempts: int | None = None,
    base: float | None = None,
    refused: bool = False,
) -> Outcome:
    """Try again later with jittered backoff, or fail with Meta's last code when the
    recipient's attempts ran out (`recipient.attempts` counts those before this one)."""
    if recipient.attempts + 1 >= (attempts or settings.DISPATCH_MAX_ATTEMPTS):
        return failure(recipient, error, refused=refused)
    delay = max(
        minimum,
        errors.backoff_delay(
            recipient.attempts,
            base=settings.DISPATCH_RETRY_BASE_SECONDS if base is None else base,
            cap=settings.DISPATCH_RETRY_CAP_SECONDS,
        ),
    )
    return Outcome(
        recipient.pk,
        "retry",
        retry_at=timezone.now() + dt.timedelta(seconds=delay),
        error_code=str(getattr(error, "code", "") or ""),
        error_title=(getattr(error, "title", "") or str(error))[:255],
        answered=getattr(error, "http_status", None) is not None,
        refused=refused,
    )
