"""The WhatsApp Graph API client: template sends, template lists and number details.

One client holds one `requests.Session` whose connection pool is as large as the number of
threads sending through it, so a dispatcher's thread pool reuses keep-alive connections
instead of paying a TCP (and, against Meta, TLS) handshake per message. The same code talks
to Meta and to our sandbox (`python manage.py meta_sandbox`); only WHATSAPP_GRAPH_URL differs.
"""

import os
from dataclasses import dataclass

import orjson
import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from . import errors
from .models import Category, ProductPolicy, WhatsAppNumber

NUMBER_FIELDS = "messaging_limit_tier,quality_rating,display_phone_number,throughput"
TEMPLATE_FIELDS = "id,name,language,category,status,components"


@dataclass(frozen=True)
class SendResult:
    wamid: str


@dataclass(frozen=True)
class NumberDetails:
    display_phone_number: str
    messaging_limit_tier: str  # Meta's value, e.g. "TIER_10K"
    quality_rating: str  # GREEN | YELLOW | RED | UNKNOWN
    throughput_level: str  # STANDARD | HIGH | NOT_APPLICABLE


def template_payload(
    to: str, template_name: str, language: str, parameters, callback_data, product_policy=""
):
    """The Cloud API / MM Lite request body of a template message with positional body text;
    product_policy only for MM Lite (/marketing_messages), where it goes on every call."""
    template = {"name": template_name, "language": {"code": language}}
    if parameters:
        template["components"] = [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": str(value)} for value in parameters],
            }
        ]
    payload = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": template,
    }
    if callback_data:
        payload["biz_opaque_callback_data"] = callback_data
    if product_policy:
        payload["product_policy"] = product_policy
    return payload


def _transport_error(error: requests.RequestException) -> errors.TransientError:
    """A call that got no answer. Only a failure to connect proves nothing reached Meta."""
    transient = errors.TransientError(f"{type(error).__name__}: {error}", title="No answer")
    transient.may_have_been_sent = not _never_connected(error)
    return transient


def _never_connected(error: requests.RequestException) -> bool:
    if isinstance(error, requests.ConnectTimeout):
        return True
    cause = error.args[0] if error.args else None  # urllib3's MaxRetryError
    return isinstance(getattr(cause, "reason", None), NewConnectionError)


class WhatsAppClient:
    """Thread-safe for concurrent sends (requests' pooled adapter); reuse one per process."""

    def __init__(
        self,
        base_url: str | None = None,
        version: str | None = None,
        timeout: tuple[float, float] = (3.05, 10),
        pool_maxsize: int = 256,
    ):
        self.base_url = (base_url or settings.WHATSAPP_GRAPH_URL).rstrip("/")
        self.version = version or settings.WHATSAPP_GRAPH_VERSION
        self.timeout = timeout
        self.session = requests.Session()
        # The environment (proxies, CA bundle) is read once here, not on every call: with
        # trust_env requests looks for ~/.netrc and the proxy variables per request, about
        # 5% of a dispatcher's CPU at a thousand messages a second.
        self.session.trust_env = False
        self.session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        self.session.verify = (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        )
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def url(self, *parts: str) -> str:
        return "/".join([self.base_url, self.version, *parts])

    def send_template(
        self,
        *,
        number: WhatsAppNumber,
        to: str,
        template_name: str,
        language: str,
        parameters: list[str],
        category: str,
        callback_data: str = "",
        product_policy: str = "",
    ) -> SendResult:
        """Send one template message; raises a messaging.errors.WhatsAppError subclass.

        MARKETING goes to /marketing_messages (Marketing Messages Lite) with product_policy
        (a ProductPolicy value: the campaign's choice, required), UTILITY to /messages, where
        Meta takes no product_policy, so it is not sent there.
        callback_data comes back as biz_opaque_callback_data in every status webhook.
        """
        marketing = category == Category.MARKETING
        if marketing and product_policy not in ProductPolicy.values:
            raise ValueError(
                f"product_policy: a MARKETING send needs one of {', '.join(ProductPolicy.values)}, "
                f"got {product_policy!r}"
            )
        endpoint = "marketing_messages" if marketing else "messages"
        body = orjson.dumps(
            template_payload(
                to,
                template_name,
                language,
                parameters,
                callback_data,
                product_policy if marketing else "",
            )
        )
        data = self._call(
            "POST", self.url(number.phone_number_id, endpoint), number, data=body, to=to
        )
        try:
            return SendResult(wamid=data["messages"][0]["id"])
        except (KeyError, IndexError, TypeError) as error:
            unexpected = errors.TransientError(f"Unexpected send answer: {data!r:.200}")
            unexpected.may_have_been_sent = True  # a 200 without a wamid
            raise unexpected from error

    def list_templates(self, number: WhatsAppNumber) -> list[dict]:
        """Every message template of the number's WABA, following Meta's cursor paging."""
        url = self.url(number.waba_id, "message_templates")
        params = {"fields": TEMPLATE_FIELDS, "limit": 100}
        templates: list[dict] = []
        while url:
            page = self._call("GET", url, number, params=params)
            templates.extend(page.get("data") or [])
            url = (page.get("paging") or {}).get("next")
            params = None  # the next link carries the query
        return templates

    def get_number(self, number: WhatsAppNumber) -> NumberDetails:
        data = self._call(
            "GET", self.url(number.phone_number_id), number, params={"fields": NUMBER_FIELDS}
        )
        return NumberDetails(
            display_phone_number=str(data.get("display_phone_number") or ""),
            messaging_limit_tier=str(data.get("messaging_limit_tier") or ""),
            quality_rating=str(data.get("quality_rating") or ""),
            throughput_level=str((data.get("throughput") or {}).get("level") or ""),
        )

    def _call(
        self, method: str, url: str, number: WhatsAppNumber, *, to: str = "", **kwargs
    ) -> dict:
        headers = {"Authorization": f"Bearer {number.access_token}"}
        if "data" in kwargs:
            headers["Content-Type"] = "application/json"
        try:
            response = self.session.request(
                method, url, headers=headers, timeout=self.timeout, **kwargs
            )
        except requests.RequestException as error:
            raise _transport_error(error) from error
        try:
            data = orjson.loads(response.content) if response.content else {}
        except orjson.JSONDecodeError:
            data = {}
        if response.status_code >= 400 or (isinstance(data, dict) and "error" in data):
            raise errors.classify(response.status_code, data, to=to)
        if not isinstance(data, dict):
            raise errors.TransientError(f"Unexpected answer: {response.text[:200]}")
        return data
