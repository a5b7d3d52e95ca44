"""Reading request bodies: by size first, only once the caller is known, and never kept.

Django caps request bodies at DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) the first time
`request.body` is read, and DRF reads it too. A 100,000-lead filter or 10,000 persons are
several megabytes, so the API and webhook views (through `BodyAfterCredentials`) read the
stream themselves, once, against WEBHOOK_MAX_BODY_BYTES, and leave the bytes where Django keeps
a body it has read.

A stranger must not be able to make a worker hold memory: a declared Content-Length over the
limit is refused before anything is read, credentials are checked from the headers before the
body is read (an HMAC signature needs the raw bytes, never a parse), and the bytes and the
parsed body are dropped as the view returns. DRF's request, view and response point at each
other and a serializer's fields at their parent, so a parsed body would otherwise live until
the cyclic garbage collector's rare full pass; after a large parsed body that pass runs at
once.
"""

import gc
import json
import re
from typing import TYPE_CHECKING

import orjson
from django.conf import settings
from django.http import HttpRequest
from django.utils.datastructures import MultiValueDict
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from .errors import PayloadTooLarge

# Under HMAC the audience filter's organization is the owner of campaignId, read from the
# start of the raw body (the seed's example puts it first) without parsing the rest.
LEADING_MEMBER_BYTES = 4096
# A parsed body at least this large is collected as its request ends.
COLLECT_AFTER_BYTES = 1024 * 1024
# What the mixin below extends, for the type checker; at run time it stays a plain mixin.
if TYPE_CHECKING:
    from rest_framework.views import APIView as _ViewBase
else:
    _ViewBase = object

_WHITESPACE = re.compile(r"[ \t\n\r]*")


def refuse_oversized(request: HttpRequest) -> None:
    """413 when the declared Content-Length is over the limit: nothing is read."""
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise PayloadTooLarge(_too_large(limit))


def read_body(request: HttpRequest) -> bytes:
    """The raw body, read at most once and never past the limit (413 beyond)."""
    if hasattr(request, "_body"):
        return request._body
    refuse_oversized(request)
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    body = request.read(limit + 1) if request.META.get("CONTENT_LENGTH") else b""
    if len(body) > limit:
        raise PayloadTooLarge(_too_large(limit))
    # Where Django caches a body it has read: request.body, DRF's parsers and the HMAC check
    # all use these bytes from here on, without Django's smaller limit.
    request._body = body
    return body


def _too_large(limit: int) -> str:
    return f"The request body is larger than the {limit:,} bytes this endpoint accepts."


class Missing(Exception):
    """The member is not among the leading members of the body's object."""


def _skip_whitespace(text: str, index: int = 0) -> int:
    match = _WHITESPACE.match(text, index)
    assert match is not None  # the pattern matches the empty string at any index
    return match.end()


def leading_member(body: bytes, name: str):
    """The value of the top-level member `name` when it is among the members starting in the
    first LEADING_MEMBER_BYTES of a JSON object; Missing otherwise. Only that window is
    decoded, so the cost is bounded whatever the body's size."""
    text = body[:LEADING_MEMBER_BYTES].decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    try:
        index = _skip_whitespace(text)
        if text[index : index + 1] != "{":
            raise Missing
        index = _skip_whitespace(text, index + 1)
        while text[index : index + 1] == '"':
            # The C string scanner json's decoder uses; typeshed does not list it.
            key, index = json.decoder.scanstring(text, index + 1)  # type: ignore[attr-defined]
            index = _skip_whitespace(text, index)
            if text[index : index + 1] != ":":
                raise Missing
            value, index = decoder.raw_decode(text, _skip_whitespace(text, index + 1))
            index = _skip_whitespace(text, index)
            if index >= len(text):
                raise Missing  # the value may go on past the window (a number cut short)
            if key == name:
                return value
            if text[index : index + 1] != ",":
                raise Missing
            index = _skip_whitespace(text, index + 1)
    except (ValueError, RecursionError):
        raise Missing from None
    raise Missing


def release_body(request) -> None:
    """Drop a finished DRF request's raw and parsed body (see the module docstring)."""
    django_request = getattr(request, "_request", None)
    if django_request is None:
        return
    size = len(getattr(django_request, "_body", b""))
    parsed = hasattr(request, "_full_data")
    django_request._body = b""
    request._data = request._full_data = {}
    request._files = MultiValueDict()
    request._stream = None
    if parsed and size >= COLLECT_AFTER_BYTES:
        gc.collect()


class BodyAfterCredentials(_ViewBase):
    """Mixin of the API and webhook views: size, then credentials, then the body; and the
    body released when the view returns."""

    def initial(self, request, *args, **kwargs):
        refuse_oversized(request._request)
        super().initial(request, *args, **kwargs)
        read_body(request._request)

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            release_body(getattr(self, "request", None))


class OrjsonParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"Malformed JSON: {exc}") from exc
