"""Reading partner bodies: a size limit of their own, and a JSON parser fast enough for 100k items.

Django caps request bodies at DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) the first time
`request.body` is read, and DRF reads it too. A 100,000-lead filter is several megabytes, so the
webhook views read the stream themselves, once, against WEBHOOK_MAX_BODY_BYTES, and leave the
bytes where Django keeps a body it has read. Every other endpoint keeps Django's limit.
"""

import orjson
from django.conf import settings
from django.http import HttpRequest
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from .exceptions import PayloadTooLarge


def read_body(request: HttpRequest) -> bytes:
    """The raw body, read at most once, refused with 413 past WEBHOOK_MAX_BODY_BYTES."""
    if hasattr(request, "_body"):
        return request._body
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise PayloadTooLarge(_too_large(limit))
    body = request.read(limit + 1) if declared else b""
    if len(body) > limit:
        raise PayloadTooLarge(_too_large(limit))
    # Where Django caches a body it has read: request.body, DRF's parsers and the HMAC check
    # all use these bytes from here on, without Django's smaller limit.
    request._body = body
    return body


def _too_large(limit: int) -> str:
    return f"The request body is larger than the {limit:,} bytes this endpoint accepts."


class OrjsonParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"Malformed JSON: {exc}") from exc
