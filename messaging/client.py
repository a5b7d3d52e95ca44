"""The WhatsApp Graph API clients: template sends, template lists and number details.

Two transports, one contract. `WhatsAppClient` (requests) serves the synchronous calls: template
sync, number details, the admin. `AsyncWhatsAppClient` (aiohttp) serves the dispatcher, whose
one event loop per process drives every request in flight: at a thousand messages a second an
asyncio request costs about a quarter of the CPU of a requests one (issue 17's measurements),
and that, not the database, is where a dispatching worker's time goes. Both build the request
and read Meta's answer through the same functions below, so a code is classified the same way
whichever transport carried it. Each keeps one connection pool sized to the concurrency that
sends through it, so keep-alive connections are reused instead of paying a TCP (and, against
Meta, TLS) handshake per message. The same code talks to Meta and to our sandbox
(`python manage.py meta_sandbox`); only WHATSAPP_GRAPH_URL differs.
"""

import os
import ssl
from dataclasses import dataclass
from typing import Any

import aiohttp
import certifi
import orjson
import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from . import errors
from .models import Category, ParameterSlot, ProductPolicy, WhatsAppNumber

# Checked for every message; ProductPolicy.values builds a new list on each read.
_PRODUCT_POLICIES = frozenset(ProductPolicy.values)
NUMBER_FIELDS = "messaging_limit_tier,quality_rating,display_phone_number,throughput"
TEMPLATE_FIELDS = "id,name,language,category,status,components"


@dataclass(frozen=True)
class SendResult:
    wamid: str


@dataclass(frozen=True)
class TemplateMessage:
    """One template message to one phone. callback_data comes back as
    biz_opaque_callback_data in every status webhook of the message. `parameters` fill the
    template's `slots` in order (MessageTemplate.parameter_slots); without slots they are
    all body parameters."""

    number: WhatsAppNumber
    to: str
    template_name: str
    language: str
    parameters: list[str]
    category: str
    callback_data: str = ""
    product_policy: str = ""
    slots: tuple[ParameterSlot, ...] = ()


@dataclass(frozen=True)
class NumberDetails:
    display_phone_number: str
    messaging_limit_tier: str  # Meta's value, e.g. "TIER_10K"
    quality_rating: str  # GREEN | YELLOW | RED | UNKNOWN
    throughput_level: str  # STANDARD | HIGH | NOT_APPLICABLE


def template_components(parameters, slots: tuple[ParameterSlot, ...] = ()) -> list[dict]:
    """Meta's `components` of a template message: the text header's parameters, the body's,
    then one component per URL button ({"type": "button", "sub_type": "url", "index": "0"},
    its index the button's place in the template). Parameters beyond the slots go to the
    body, where Meta's count check (132000) refuses them rather than this guessing."""
    header: list[dict] = []
    body: list[dict] = []
    buttons: dict[int, list[dict]] = {}
    for index, value in enumerate(parameters):
        parameter = {"type": "text", "text": str(value)}
        slot = slots[index] if index < len(slots) else None
        if slot is not None and slot.component == ParameterSlot.HEADER:
            header.append(parameter)
        elif slot is not None and slot.component == ParameterSlot.BUTTON:
            buttons.setdefault(slot.button_index or 0, []).append(parameter)
        else:
            body.append(parameter)
    components = [{"type": "header", "parameters": header}] if header else []
    if body:
        components.append({"type": "body", "parameters": body})
    components += [
        {"type": "button", "sub_type": "url", "index": str(index), "parameters": texts}
        for index, texts in sorted(buttons.items())
    ]
    return components


def template_payload(
    to: str,
    template_name: str,
    language: str,
    parameters,
    callback_data,
    product_policy="",
    slots: tuple[ParameterSlot, ...] = (),
):
    """The Cloud API / MM Lite request body of a template message with positional text
    parameters; product_policy only for MM Lite (/marketing_messages), where it goes on
    every call."""
    template: dict[str, Any] = {"name": template_name, "language": {"code": language}}
    components = template_components(parameters, slots)
    if components:
        template["components"] = components
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


def _transport_error(error: Exception, *, never_connected: bool) -> errors.TransientError:
    """A call that got no answer. Only a failure to connect proves nothing reached Meta."""
    transient = errors.TransientError(f"{type(error).__name__}: {error}", title="No answer")
    transient.may_have_been_sent = not never_connected
    return transient


def _never_connected(error: requests.RequestException) -> bool:
    if isinstance(error, requests.ConnectTimeout):
        return True
    cause = error.args[0] if error.args else None  # urllib3's MaxRetryError
    return isinstance(getattr(cause, "reason", None), NewConnectionError)


def _read_answer(status_code: int, content: bytes, *, to: str = "") -> dict:
    """Meta's answer as a dict, or the classified error it carries."""
    try:
        data = orjson.loads(content) if content else {}
    except orjson.JSONDecodeError:
        data = {}
    if status_code >= 400 or (isinstance(data, dict) and "error" in data):
        raise errors.classify(status_code, data, to=to)
    if not isinstance(data, dict):
        raise errors.TransientError(f"Unexpected answer: {content[:200]!r}")
    return data


def _send_result(data: dict) -> SendResult:
    try:
        return SendResult(wamid=data["messages"][0]["id"])
    except (KeyError, IndexError, TypeError) as error:
        unexpected = errors.TransientError(f"Unexpected send answer: {data!r:.200}")
        unexpected.may_have_been_sent = True  # a 200 without a wamid
        raise unexpected from error


def _environment_proxies(url: str) -> dict[str, str]:
    """The proxies the environment sets for `url` (HTTPS_PROXY, NO_PROXY, ...), read once."""
    return requests.utils.get_environ_proxies(url)


def _ca_bundle() -> str | None:
    """The CA bundle the environment names (as requests reads it), or None for the default."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


class _GraphApi:
    """What both transports share: where a call goes and what a template send carries."""

    def __init__(
        self,
        base_url: str | None = None,
        version: str | None = None,
        timeout: tuple[float, float] = (3.05, 10),
        pool_maxsize: int = 256,
    ):
        """timeout: (connect, read) seconds; pool_maxsize: connections kept, as many as the
        calls that may be in flight through this client at once."""
        self.base_url = (base_url or settings.WHATSAPP_GRAPH_URL).rstrip("/")
        self.version = version or settings.WHATSAPP_GRAPH_VERSION
        self.timeout = timeout
        self._open(pool_maxsize)

    def _open(self, pool_maxsize: int) -> None:
        raise NotImplementedError

    def url(self, *parts: str) -> str:
        return "/".join([self.base_url, self.version, *parts])

    def template_request(self, message: TemplateMessage) -> tuple[str, dict[str, str], bytes]:
        """The URL, headers and body of one template send.

        MARKETING goes to /marketing_messages (Marketing Messages Lite) with product_policy
        (a ProductPolicy value: the campaign's choice, required), UTILITY to /messages, where
        Meta takes no product_policy, so it is not sent there.
        """
        marketing = message.category == Category.MARKETING
        if marketing and message.product_policy not in _PRODUCT_POLICIES:
            raise ValueError(
                f"product_policy: a MARKETING send needs one of {', '.join(ProductPolicy.values)}, "
                f"got {message.product_policy!r}"
            )
        endpoint = "marketing_messages" if marketing else "messages"
        body = orjson.dumps(
            template_payload(
                message.to,
                message.template_name,
                message.language,
                message.parameters,
                message.callback_data,
                message.product_policy if marketing else "",
                message.slots,
            )
        )
        headers = _headers(message.number) | {"Content-Type": "application/json"}
        return self.url(message.number.phone_number_id, endpoint), headers, body


def _headers(number: WhatsAppNumber) -> dict[str, str]:
    return {"Authorization": f"Bearer {number.access_token}"}


class WhatsAppClient(_GraphApi):
    """Thread-safe for concurrent calls (requests' pooled adapter); reuse one per process."""

    def _open(self, pool_maxsize: int) -> None:
        self.session = requests.Session()
        # The environment (proxies, CA bundle) is read once here, not on every call: with
        # trust_env requests looks for ~/.netrc and the proxy variables per request, about
        # 5% of a dispatcher's CPU at a thousand messages a second.
        self.session.trust_env = False
        self.session.proxies.update(_environment_proxies(self.base_url))
        self.session.verify = _ca_bundle() or True
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def send_template(self, message: TemplateMessage) -> SendResult:
        """Send one template message; raises a messaging.errors.WhatsAppError subclass."""
        url, headers, body = self.template_request(message)
        return _send_result(self._call("POST", url, headers, data=body, to=message.to))

    def list_templates(self, number: WhatsAppNumber) -> list[dict]:
        """Every message template of the number's WABA, following Meta's cursor paging."""
        url: str | None = self.url(number.waba_id, "message_templates")
        params: dict | None = {"fields": TEMPLATE_FIELDS, "limit": 100}
        templates: list[dict] = []
        while url:
            page = self._call("GET", url, _headers(number), params=params)
            templates.extend(page.get("data") or [])
            url = (page.get("paging") or {}).get("next")
            params = None  # the next link carries the query
        return templates

    def get_number(self, number: WhatsAppNumber) -> NumberDetails:
        data = self._call(
            "GET",
            self.url(number.phone_number_id),
            _headers(number),
            params={"fields": NUMBER_FIELDS},
        )
        return NumberDetails(
            display_phone_number=str(data.get("display_phone_number") or ""),
            messaging_limit_tier=str(data.get("messaging_limit_tier") or ""),
            quality_rating=str(data.get("quality_rating") or ""),
            throughput_level=str((data.get("throughput") or {}).get("level") or ""),
        )

    def _call(self, method: str, url: str, headers: dict, *, to: str = "", **kwargs) -> dict:
        try:
            response = self.session.request(
                method, url, headers=headers, timeout=self.timeout, **kwargs
            )
        except requests.RequestException as error:
            raise _transport_error(error, never_connected=_never_connected(error)) from error
        return _read_answer(response.status_code, response.content, to=to)


class AsyncWhatsAppClient(_GraphApi):
    """Template sends from one event loop: create, use and close it on that loop.

    The same pool size, timeouts (connect, read), proxy and CA bundle as `WhatsAppClient`."""

    def _open(self, pool_maxsize: int) -> None:
        scheme = self.base_url.split(":", 1)[0]
        self.proxy = _environment_proxies(self.base_url).get(scheme)
        context = ssl.create_default_context(cafile=_ca_bundle() or certifi.where())
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=pool_maxsize, limit_per_host=0, ssl=context),
            timeout=aiohttp.ClientTimeout(sock_connect=self.timeout[0], sock_read=self.timeout[1]),
            skip_auto_headers=("User-Agent",),
        )

    async def close(self) -> None:
        await self.session.close()

    async def send_template(self, message: TemplateMessage) -> SendResult:
        """Send one template message; raises a messaging.errors.WhatsAppError subclass."""
        url, headers, body = self.template_request(message)
        try:
            async with self.session.post(
                url, data=body, headers=headers, proxy=self.proxy
            ) as response:
                content = await response.read()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
            raise _transport_error(error, never_connected=True) from error
        except (TimeoutError, aiohttp.ClientError) as error:
            raise _transport_error(error, never_connected=False) from error
        return _send_result(_read_answer(response.status, content, to=message.to))
