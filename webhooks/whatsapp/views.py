"""`/webhooks/whatsapp`: Meta's verification handshake and its signed event deliveries."""

import hashlib
import hmac
import json
import logging

from django.conf import settings
from django.http import HttpResponse, HttpResponseForbidden, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .handlers import handle_delivery

logger = logging.getLogger(__name__)


def _signature_is_valid(body: bytes, header: str) -> bool:
    expected = hmac.new(settings.WHATSAPP_APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest("sha256=" + expected, header or "")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def whatsapp_webhook(request):
    if request.method == "GET":
        if (
            request.GET.get("hub.mode") == "subscribe"
            and request.GET.get("hub.verify_token") == settings.WHATSAPP_VERIFY_TOKEN
        ):
            return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")
        return HttpResponseForbidden("verification failed")

    body = request.body
    if not _signature_is_valid(body, request.headers.get("X-Hub-Signature-256", "")):
        return JsonResponse({"error": "invalid signature"}, status=401)
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        # Meta retries anything but a 2xx; a body that will never parse (or nests deeper
        # than the parser goes) must not loop.
        logger.warning("unparseable WhatsApp webhook body", extra={"bytes": len(body)})
        return JsonResponse({"status": "ignored"})
    counts = handle_delivery(payload)
    return JsonResponse({"status": "ok", **counts})
