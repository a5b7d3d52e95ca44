"""The error bodies of the REST API, in the seeds' shape.

`{"statusCode": 400, "message": <where the error is>, "error": "Bad Request"}`, and exactly
`{"statusCode": 401, "message": "Unauthorized"}` whatever was wrong with the key, so an answer
never tells a revoked key from one that never existed.
"""

import itertools
from collections.abc import Iterator
from http import HTTPStatus

from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings


class BadRequest(exceptions.APIException):
    """A body that is not the documented shape; the message names the field path."""

    status_code = status.HTTP_400_BAD_REQUEST


class Conflict(exceptions.APIException):
    """The object's state forbids the call (e.g. editing a campaign that left draft)."""

    status_code = status.HTTP_409_CONFLICT


class TooManyRequests(exceptions.APIException):
    """An allowance of the organization is used up; Retry-After says when it has room."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail)
        self.retry_after = retry_after


class PayloadTooLarge(exceptions.APIException):
    """A body over WEBHOOK_MAX_BODY_BYTES, refused before or while it is read."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"


def api_exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        auth_header = getattr(exc, "auth_header", None)
        headers: dict[str, str] | None = {"WWW-Authenticate": auth_header} if auth_header else {}
        body = {"statusCode": 401, "message": "Unauthorized"}
        return Response(body, status=status.HTTP_401_UNAUTHORIZED, headers=headers)
    if isinstance(exc, exceptions.APIException):
        body = {
            "statusCode": exc.status_code,
            "message": str(exc.detail),
            "error": HTTPStatus(exc.status_code).phrase,
        }
        retry_after = getattr(exc, "retry_after", None)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return Response(body, status=exc.status_code, headers=headers)
    return None


# The problems a 400 names at most: enough to fix a payload in one round, bounded whatever
# the size of the body (10,000 persons with a bad phone are not 10,000 messages).
MAX_REPORTED_ERRORS = 20


def error_places(detail, place: str = "") -> Iterator[tuple[str, str]]:
    """DRF's nested `serializer.errors` as (place, message) pairs in the body's order, the
    place a path like `sends[1].template` ("" for the body itself). A `many` serializer's
    errors hold one entry per item ({} for a good one), a ListField's are keyed by the item's
    index, and non_field_errors belong to the object itself."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY:
                child = place
            elif isinstance(key, int):
                child = f"{place}[{key}]"
            else:
                child = f"{place}.{key}" if place else str(key)
            yield from error_places(value, child)
    elif isinstance(detail, list):
        for index, item in enumerate(detail):
            if isinstance(item, (dict, list)):
                yield from error_places(item, f"{place}[{index}]")
            else:
                yield place, str(item)
    else:
        yield place, str(detail)


def refusal(detail) -> BadRequest:
    """The 400 naming the first MAX_REPORTED_ERRORS problems of a serializer's errors, each
    as "place: message" ("body" for the body itself)."""
    places = itertools.islice(error_places(detail), MAX_REPORTED_ERRORS)
    return BadRequest("; ".join(f"{place or 'body'}: {message}" for place, message in places))
