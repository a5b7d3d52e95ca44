"""The Graph API subset we use, and the sandbox's own control endpoints under /_sandbox/.

Graph API:
    POST /{version}/{phone_number_id}/marketing_messages   MARKETING templates (MM Lite)
    POST /{version}/{phone_number_id}/messages             any approved template (Cloud API)
    GET  /{version}/{waba_id}/message_templates            the WABA's templates, paged
    GET  /{version}/{phone_number_id}                      tier, quality, throughput
Errors use Meta's codes and error object; see docs/meta-sandbox.md for the table.
"""

import asyncio
import base64
import os
import secrets
import time
from typing import Any

import orjson
from aiohttp import web

from messaging.models import ProductPolicy
from setter.phones import normalize_phone

from .state import (
    Recorder,
    Registry,
    SandboxConfig,
    SendRecord,
    make_rng,
    number_from_json,
    template_from_json,
)
from .webhooks import ERROR_TITLES, Accepted, StatusNotifier

VERSION = r"{version:v\d+\.\d+}"
# Codes that may only mean the database changed since the sandbox last read it.
PRODUCT_POLICIES = tuple(ProductPolicy.values)
STALE_REGISTRY_CODES = {100, 190, 131055, 132001, 132015, 132016}


class Sandbox:
    """The state one sandbox server runs on; `reset` returns it to how it started."""

    def __init__(self, config: SandboxConfig, registry: Registry, reload=None):
        self.initial_config = SandboxConfig(**config.as_dict())
        self.initial_registry = registry.copy()
        self.config = config
        self.registry = registry
        self.reload_registry = reload  # () -> Registry, blocking (reads the database)
        self.rng = make_rng(config.seed)
        self.recorder = Recorder()
        self.notifier = StatusNotifier(self.config, self.rng)
        self._reload_lock = asyncio.Lock()

    async def reload(self) -> Registry:
        """Re-read numbers and templates from the database (in a thread: the ORM blocks)."""
        async with self._reload_lock:
            registry = await asyncio.get_running_loop().run_in_executor(None, self.reload_registry)
            self.registry = registry
            self.initial_registry = registry.copy()
            return registry

    async def reload_if_stale(self) -> bool:
        """After a send named something unknown: maybe it was just added in the admin.

        Sends that fail together share the reload already under way instead of each
        reading the database again.
        """
        if self.reload_registry is None:
            return False
        if self._reload_lock.locked():
            async with self._reload_lock:
                return True
        await self.reload()
        return True

    def reset(self) -> None:
        for name, value in self.initial_config.as_dict().items():
            setattr(self.config, name, value)
        self.registry = self.initial_registry.copy()
        self.rng.seed(self.config.seed)
        self.recorder = Recorder()
        self.notifier.clear()


SANDBOX = web.AppKey("sandbox", Sandbox)
ERROR_CODE = web.ResponseKey("error_code", int)


def graph_error(status: int, code: int, message: str, details: str = "", **extra) -> web.Response:
    error = {"message": message, "type": extra.pop("type", "OAuthException"), "code": code}
    error.update(extra)
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    error["fbtrace_id"] = "A" + secrets.token_urlsafe(16)
    response = _json({"error": error}, status)
    response[ERROR_CODE] = code  # for the recorder
    return response


def _json(data, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _new_wamid() -> str:
    return "wamid.HBgL" + base64.b64encode(os.urandom(27)).decode()


def _unknown_object(object_id: str, method: str) -> web.Response:
    return graph_error(
        400,
        100,
        f"Unsupported {method} request. Object with ID '{object_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation.",
        type="GraphMethodException",
        error_subcode=33,
    )


def _bad_token(request: web.Request, token: str) -> bool:
    return request.headers.get("Authorization", "") != f"Bearer {token}"


def _invalid_token() -> web.Response:
    return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")


def _given_parameters(template: dict) -> dict[str, int]:
    """How many parameters a send gives per component, keyed like
    SandboxTemplate.expected_parameters ("body", "header", "button <index>")."""
    given: dict[str, int] = {}
    for component in template.get("components") or []:
        if not isinstance(component, dict):
            continue
        kind = str(component.get("type", "")).lower()
        key = f"button {component.get('index', '')}" if kind == "button" else kind
        given[key] = given.get(key, 0) + len(component.get("parameters") or [])
    return {key: count for key, count in given.items() if count}


def _parameter_count_error(given: dict[str, int], expected: dict[str, int]) -> str:
    """Meta's 132000 detail for the first component whose count is off, "" when all match."""
    for key in (
        "body",
        "header",
        *sorted(k for k in {*given, *expected} if k.startswith("button")),
    ):
        if given.get(key, 0) != expected.get(key, 0):
            if key.startswith("button"):
                return (
                    f"buttons: number of parameters for button at index {key.split(' ', 1)[1]} "
                    f"({given.get(key, 0)}) does not match the expected number of params "
                    f"({expected.get(key, 0)})"
                )
            return (
                f"{key}: number of localizable_params ({given.get(key, 0)}) does not match the "
                f"expected number of params ({expected.get(key, 0)})"
            )
    return ""


async def send_message(request: web.Request) -> web.Response:
    sandbox: Sandbox = request.app[SANDBOX]
    received, received_at = time.monotonic(), time.time()
    endpoint = request.path.rsplit("/", 1)[1]
    phone_number_id = request.match_info["object_id"]
    raw = await request.read()
    delay = _answer_delay(sandbox)
    if delay:
        await asyncio.sleep(delay)
    to, template_name, callback, parameters, product_policy = "", "", "", [], None
    components: tuple = ()
    try:
        payload = orjson.loads(raw)
        if not isinstance(payload, dict):
            raise ValueError
        to = str(payload.get("to", "")).lstrip("+")
        template = payload.get("template")
        template = template if isinstance(template, dict) else {}
        template_name = str(template.get("name", ""))
        callback = str(payload.get("biz_opaque_callback_data", ""))
        parameters = _body_parameters(template)
        product_policy = payload.get("product_policy")
        sent_components = template.get("components")
        components = tuple(sent_components) if isinstance(sent_components, list) else ()
    except ValueError:
        payload, template = None, {}
    response, accepted = _answer_send(sandbox, request, endpoint, phone_number_id, payload, to)
    if response.get(ERROR_CODE) in STALE_REGISTRY_CODES and await sandbox.reload_if_stale():
        response, accepted = _answer_send(sandbox, request, endpoint, phone_number_id, payload, to)
    sandbox.recorder.record(
        SendRecord(
            at=received,
            received_at=received_at,
            answered_at=time.monotonic(),
            phone_number_id=phone_number_id,
            endpoint=endpoint,
            to=to,
            template=template_name,
            http_status=response.status,
            error_code=response.get(ERROR_CODE),
            wamid=accepted.wamid if accepted else "",
            callback_data=callback,
            parameters=parameters,
            product_policy=product_policy,
            components=components,
        )
    )
    if accepted:
        sandbox.notifier.schedule(accepted)
    return response


def _answer_delay(sandbox: Sandbox) -> float:
    """Seconds before this answer: the set latency, plus for a share of answers a slow one
    (Meta on a busy day answers some sends seconds late)."""
    config = sandbox.config
    delay = config.latency_ms
    if config.ratio_slow and sandbox.rng.random() < config.ratio_slow:
        delay += sandbox.rng.uniform(config.slow_ms_min, config.slow_ms_max)
    return delay / 1000


def _body_parameters(template: dict) -> list:
    """The texts of the body component's parameters, as the recipient would read them."""
    for component in template.get("components") or []:
        if isinstance(component, dict) and component.get("type") == "body":
            return [p.get("text") for p in component.get("parameters") or [] if isinstance(p, dict)]
    return []


def _answer_send(sandbox, request, endpoint, phone_number_id, payload, to):
    """(response, Accepted or None) for one send: validation, then injected faults."""
    registry, config = sandbox.registry, sandbox.config
    number = registry.numbers.get(phone_number_id)
    if number is None:
        return _unknown_object(phone_number_id, "post"), None
    if _bad_token(request, number.access_token):
        return _invalid_token(), None
    if payload is None:
        return graph_error(
            400, 100, "(#100) Invalid parameter", "The request body is not JSON."
        ), None
    if payload.get("messaging_product") != "whatsapp":
        return graph_error(
            400, 100, "(#100) Invalid parameter", "messaging_product must be 'whatsapp'."
        ), None
    if payload.get("type") != "template" or not isinstance(payload.get("template"), dict):
        return graph_error(
            400, 100, "(#100) Invalid parameter", "Message must be a template message."
        ), None
    if not to.isdigit() or not 7 <= len(to) <= 15:
        return graph_error(400, 100, "(#100) Invalid parameter", "Invalid 'to' phone number."), None
    marketing = endpoint == "marketing_messages"
    if "product_policy" in payload and (
        not marketing or payload["product_policy"] not in PRODUCT_POLICIES
    ):
        allowed = " or ".join(PRODUCT_POLICIES) if marketing else "absent on /messages"
        return graph_error(
            400, 100, "(#100) Invalid parameter", f"product_policy must be {allowed}."
        ), None
    if marketing and not number.mm_lite_terms_accepted:
        return graph_error(
            400,
            131055,
            "(#131055) Method not allowed",
            "You must accept the Marketing Messages Lite API terms to use the API.",
        ), None
    requested = payload["template"]
    language = str((requested.get("language") or {}).get("code", ""))
    name = str(requested.get("name", ""))
    template = registry.templates.get((number.waba_id, name, language))
    if template is None or template.status not in ("APPROVED", "PAUSED", "DISABLED"):
        return graph_error(
            404,
            132001,
            "(#132001) Template name does not exist in the translation",
            f"template name ({name}) does not exist in {language}",
        ), None
    if template.status == "PAUSED":
        return graph_error(400, 132015, "(#132015) Template is Paused", f"{name} is paused"), None
    if template.status == "DISABLED":
        return graph_error(
            400, 132016, "(#132016) Template is disabled", f"{name} is disabled"
        ), None
    if marketing and template.category != "MARKETING":
        return graph_error(
            400,
            131055,
            "(#131055) Method not allowed",
            "Only MARKETING templates can be sent through the Marketing Messages Lite API.",
        ), None
    mismatch = _parameter_count_error(_given_parameters(requested), template.expected_parameters())
    if mismatch:
        return graph_error(
            400,
            132000,
            "(#132000) Number of parameters does not match the expected number of params",
            mismatch,
        ), None
    phone = normalize_phone("+" + to, strict=False)
    if marketing and phone.marketing_blocked:
        return graph_error(
            400,
            131049,
            "This message was not delivered to maintain healthy ecosystem engagement.",
            "Marketing messages to United States phone numbers are not delivered.",
        ), None
    draw = sandbox.rng.random()
    if draw < config.ratio_429:
        return graph_error(
            429,
            130429,
            "(#130429) Rate limit hit",
            "Cloud API message throughput has been reached.",
        ), None
    draw -= config.ratio_429
    if draw < config.ratio_5xx:
        return graph_error(500, 131000, "(#131000) Something went wrong", "Sandbox fault."), None
    draw -= config.ratio_5xx
    if draw < config.ratio_permanent:
        code = config.permanent_code
        title = ERROR_TITLES.get(code, "Message failed")
        return graph_error(400, code, f"(#{code}) {title}", f"{title} (sandbox)"), None
    accepted = Accepted(
        number=number,
        wa_id=to,
        wamid=_new_wamid(),
        callback_data=str(payload.get("biz_opaque_callback_data", "")),
        pricing_category=(
            "marketing_lite"
            if marketing
            else ("utility" if template.category == "UTILITY" else "marketing")
        ),
        conversation_id=secrets.token_hex(16),
        limited_reporting=phone.limited_reporting,
    )
    answer = {
        "messaging_product": "whatsapp",
        "contacts": [{"input": payload["to"], "wa_id": to}],
        "messages": [{"id": accepted.wamid, "message_status": "accepted"}],
    }
    return _json(answer), accepted


async def list_templates(request: web.Request) -> web.Response:
    sandbox: Sandbox = request.app[SANDBOX]
    waba_id = request.match_info["object_id"]
    numbers = [n for n in sandbox.registry.numbers.values() if n.waba_id == waba_id]
    if not numbers:
        return _unknown_object(waba_id, "get")
    if all(_bad_token(request, n.access_token) for n in numbers):
        return _invalid_token()
    templates = sorted(sandbox.registry.templates_of(waba_id), key=lambda t: (t.name, t.language))
    try:
        limit = max(1, min(int(request.query.get("limit", 25)), 1000))
        start = int(request.query.get("after") or 0)
    except ValueError:
        return graph_error(400, 100, "(#100) Invalid parameter", "limit and after are numbers.")
    page = templates[start : start + limit]
    result: dict[str, Any] = {
        "data": [t.as_graph() for t in page],
        "paging": {"cursors": {"before": str(start)}},
    }
    if page:
        result["paging"]["cursors"]["after"] = str(start + len(page))
    if start + limit < len(templates):
        query = {**request.query, "after": str(start + limit), "limit": str(limit)}
        result["paging"]["next"] = str(request.url.with_query(query))
    return _json(result)


async def get_number(request: web.Request) -> web.Response:
    sandbox: Sandbox = request.app[SANDBOX]
    phone_number_id = request.match_info["object_id"]
    number = sandbox.registry.numbers.get(phone_number_id)
    if number is None:
        return _unknown_object(phone_number_id, "get")
    if _bad_token(request, number.access_token):
        return _invalid_token()
    every = {
        "id": number.phone_number_id,
        "display_phone_number": number.display_phone_number,
        "messaging_limit_tier": number.messaging_limit_tier,
        "quality_rating": number.quality_rating,
        "throughput": {"level": number.throughput_level},
    }
    fields = [f for f in request.query.get("fields", "").split(",") if f in every]
    return _json({key: every[key] for key in [*fields, "id"]})


# --- Control endpoints ---------------------------------------------------------------------


async def _json_body(request: web.Request) -> dict:
    try:
        data = await request.json(loads=orjson.loads)
    except ValueError as error:
        raise web.HTTPBadRequest(text=f"invalid JSON: {error}") from error
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return data


async def control_config(request: web.Request) -> web.Response:
    sandbox: Sandbox = request.app[SANDBOX]
    if request.method == "POST":
        changes = await _json_body(request)
        before = sandbox.config.as_dict()
        try:
            sandbox.config.update(changes)
        except (TypeError, ValueError) as error:
            sandbox.config.update(before)
            return _json({"error": str(error)}, 400)
        if "seed" in changes:
            sandbox.rng.seed(sandbox.config.seed)
    shown = sandbox.config.as_dict()
    shown["app_secret"] = "***" if shown["app_secret"] else ""
    return _json(shown)


async def control_reset(request: web.Request) -> web.Response:
    request.app[SANDBOX].reset()
    return _json({"reset": True})


async def control_reload(request: web.Request) -> web.Response:
    sandbox: Sandbox = request.app[SANDBOX]
    if sandbox.reload_registry is None:
        return _json({"error": "this sandbox was not started from the database"}, 400)
    registry = await sandbox.reload()
    return _json({"numbers": len(registry.numbers), "templates": len(registry.templates)})


async def control_numbers(request: web.Request) -> web.Response:
    sandbox: Sandbox = request.app[SANDBOX]
    try:
        number = number_from_json(await _json_body(request))
    except (TypeError, ValueError) as error:
        return _json({"error": str(error)}, 400)
    sandbox.registry.add_number(number)
    return _json({"phone_number_id": number.phone_number_id}, 201)


async def control_templates(request: web.Request) -> web.Response:
    sandbox: Sandbox = request.app[SANDBOX]
    try:
        template = template_from_json(await _json_body(request), sandbox.registry.new_template_id())
    except (TypeError, ValueError) as error:
        return _json({"error": str(error)}, 400)
    sandbox.registry.add_template(template)
    return _json(template.as_graph(), 201)


async def control_requests(request: web.Request) -> web.Response:
    recorder = request.app[SANDBOX].recorder
    matching = recorder.matching(
        phone=request.query.get("phone", ""),
        phone_number_id=request.query.get("phone_number_id", ""),
    )
    limit = int(request.query.get("limit", 1000))
    return _json(
        {
            "count": len(matching),
            "accepted": sum(1 for r in matching if r["wamid"]),
            "requests": matching[-limit:] if limit else [],
        }
    )


async def control_stats(request: web.Request) -> web.Response:
    sandbox: Sandbox = request.app[SANDBOX]
    return _json({**sandbox.recorder.stats(), "webhooks": sandbox.notifier.snapshot()})


def make_app(sandbox: Sandbox) -> web.Application:
    app = web.Application(client_max_size=1024**2)
    app[SANDBOX] = sandbox
    app.add_routes(
        [
            web.get("/_sandbox/config", control_config),
            web.post("/_sandbox/config", control_config),
            web.post("/_sandbox/reset", control_reset),
            web.post("/_sandbox/reload", control_reload),
            web.post("/_sandbox/numbers", control_numbers),
            web.post("/_sandbox/templates", control_templates),
            web.get("/_sandbox/requests", control_requests),
            web.get("/_sandbox/stats", control_stats),
            web.post(f"/{VERSION}/{{object_id}}/messages", send_message),
            web.post(f"/{VERSION}/{{object_id}}/marketing_messages", send_message),
            web.get(f"/{VERSION}/{{object_id}}/message_templates", list_templates),
            web.get(f"/{VERSION}/{{object_id}}", get_number),
        ]
    )

    async def notifier_lifecycle(app):
        await sandbox.notifier.start()
        yield
        await sandbox.notifier.stop()

    app.cleanup_ctx.append(notifier_lifecycle)
    return app
