"""Errors of the partner webhooks and the one JSON shape every one of them answers with.

Every error body is `{"error": <code>, "detail": <sentence>}`, plus `errors` — a list of
`{"field": <path>, "message": ...}` — when the request itself was invalid. Field paths follow
the payload's own names: `leads[3].phoneE164`; `$` is the body as a whole.
"""

from typing import Any

from rest_framework import exceptions, status
from rest_framework.response import Response

from setter.api.errors import error_places

BODY_PATH = "$"


class InvalidPayload(exceptions.ValidationError):
    """A body that is not the documented shape; carries field paths, not DRF's nested dicts."""

    def __init__(self, errors: list[dict], detail: str = "The request body is invalid."):
        super().__init__(detail)
        self.errors = errors
        self.message = detail


def field_errors(detail) -> list[dict]:
    """DRF's nested error detail as `{"field", "message"}` items with field paths."""
    return [
        {"field": place or BODY_PATH, "message": message} for place, message in error_places(detail)
    ]


def webhook_exception_handler(exc, context):
    """DRF exception handler of the webhook views: every failure is JSON in one shape."""
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        body: dict[str, Any] = {"error": "unauthorized", "detail": str(exc.detail)}
        return Response(body, status=status.HTTP_401_UNAUTHORIZED, headers=_challenge(context))
    if isinstance(exc, InvalidPayload):
        body = {"error": "invalid_request", "detail": exc.message, "errors": exc.errors}
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.ValidationError):
        errors = field_errors(exc.detail)
        body = {
            "error": "invalid_request",
            "detail": "The request body is invalid.",
            "errors": errors,
        }
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.ParseError):
        body = {
            "error": "invalid_request",
            "detail": str(exc.detail),
            "errors": [{"field": BODY_PATH, "message": str(exc.detail)}],
        }
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        return Response({"error": code, "detail": str(exc.detail)}, status=exc.status_code)
    return None


def _challenge(context) -> dict:
    request = context.get("request")
    authenticators = getattr(request, "authenticators", None) or []
    if authenticators:
        return {"WWW-Authenticate": authenticators[0].authenticate_header(request)}
    return {}
