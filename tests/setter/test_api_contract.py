"""The published request schema of every body route says exactly what the server does: over a
good body and its mutations (an unknown key, a wrong type, a NUL in a string, a required key
left out, at every level of the body) the schema refuses a body exactly when the server
answers 400. The body declarations are the one source of both (setter/api/contract.py), so
this holds by construction; the test keeps it so. A new body route joins by being in the
URL conf: it fails here until GOOD_BODIES has a good body for it."""

import copy

import pytest

from audiences.models import Audience, Lead
from campaigns.models import Send, TestPhone
from tests.api_schema import published_schema, request_validator
from tests.factories import MessageTemplateFactory, WhatsAppNumberFactory
from tests.support import STAFF_PHONE

from .test_api_refusals import BODY_ROUTES, call

pytestmark = pytest.mark.django_db

SCHEDULE = {"localDate": "2031-03-01", "localTime": "09:00", "timeZone": "Europe/London"}
SEND = {
    "name": "First",
    "template": "contract_sale",
    "language": "en_US",
    "category": "MARKETING",
    "parameters": ["{{ lead.first_name }}", "20%"],
    "headerParameters": [],
    "buttonParameters": [],
    "schedule": SCHEDULE,
    "maxMessagesPerSecond": 20,
    "audienceFilter": "off",
    "eventFilter": {"mode": "include", "eventType": "purchase", "within": {"minutes": 60}},
}
QUERY = {"filter": {"name": "x"}, "sort": [{"field": "name", "direction": 1}], "limit": 10}
TARGETS_QUERY = {"filter": {"firstName": "Ann"}, "sort": [{"field": "firstName"}], "limit": 10}
EVENT = {"phoneE164": "+447700900001", "eventType": "purchase", "occurredAt": "2026-01-01T10:00Z"}

# A body each route honours, in contract_world.
GOOD_BODIES = {
    ("api/v1/webhooks/campaigns/audience-filter", "post"): lambda w: {
        "campaignId": w["campaign_pk"],
        "sendId": int(w["send_id"]),
        "mode": "include",
        "leads": [{"externalId": "abc123", "phoneE164": "+447700900001"}],
    },
    ("api/v1/webhooks/lead-events", "post"): lambda w: {"events": [EVENT]},
    ("api/v1/segments", "post"): lambda w: {
        "id": "vip",
        "name": "VIP",
        "description": "Best customers",
        "persons": [
            {
                "externalId": "p1",
                "firstName": "Ann",
                "lastName": "Lee",
                "phone": "+447700900001",
                "email": "ann@example.com",
                "substitutionTags": [{"tag": "coupon", "value": "C1"}],
            }
        ],
    },
    ("api/v1/segments/query", "post"): lambda w: QUERY,
    ("api/v1/segments/<str:segment_id>", "patch"): lambda w: {
        "name": "Renamed",
        "description": "d",
    },
    ("api/v1/segments/<str:segment_id>/targets", "post"): lambda w: {"targetIds": [w["target_id"]]},
    ("api/v1/segments/<str:segment_id>/targets/remove", "post"): lambda w: {
        "targetIds": [w["target_id"]]
    },
    ("api/v1/segments/<str:segment_id>/targets/query", "post"): lambda w: TARGETS_QUERY,
    ("api/v1/campaigns", "post"): lambda w: {
        "id": "spring",
        "name": "Spring sale",
        "description": "d",
        "senderId": w["sender_id"],
        "segmentIds": [w["segment_id"]],
        "productPolicyConfirmed": True,
        "productPolicy": "CLOUD_API_FALLBACK",
        "stopAt": "2031-04-01T00:00:00Z",
        "sendWindow": {"start": "09:00", "end": "20:00", "days": ["mon"], "outside": "wait"},
        "sends": [SEND],
    },
    ("api/v1/campaigns/query", "post"): lambda w: QUERY,
    ("api/v1/campaigns/<str:campaign_id>", "patch"): lambda w: {
        "name": "Renamed",
        "description": "d",
        "stopAt": "2031-04-01T00:00:00Z",
    },
    ("api/v1/campaigns/<str:campaign_id>/start", "post"): lambda w: {
        "scheduledFor": "2031-03-01T09:00:00Z",
        "stopAt": "2031-04-01T00:00:00Z",
    },
    ("api/v1/campaigns/<str:campaign_id>/stop", "post"): lambda w: {},
    ("api/v1/campaigns/<str:campaign_id>/duplicate", "post"): lambda w: {
        "id": "spring-copy",
        "name": "Spring sale again",
    },
    ("api/v1/campaigns/<str:campaign_id>/sends/<str:send_id>/test", "post"): lambda w: {
        "phone": STAFF_PHONE,
        "leadId": w["target_id"],
    },
    ("api/v1/campaigns/<str:campaign_id>/sends/<str:send_id>/retry", "post"): lambda w: {
        "at": "2031-03-01T09:00:00Z",
        "include": ["undeliverable"],
    },
    ("api/v1/campaigns/<str:campaign_id>/sends/<str:send_id>/preview", "post"): lambda w: {
        "leadId": w["target_id"]
    },
    ("api/v1/organization/delivery-settings", "patch"): lambda w: {
        "defaultTimeZone": "Europe/London",
        "frequencyCap": {"messages": 2, "days": 7, "utility": False},
        "qualityGuard": {"failurePercent": 20, "failureWindow": 200, "stopPercent": 2.5},
        "sendWindow": {"start": "09:00", "end": "20:00", "days": ["mon"], "outside": "skip"},
    },
    ("api/v1/webhook-endpoints", "post"): lambda w: {
        "url": "https://example.com/hooks/2",
        "description": "CRM",
        "eventTypes": ["campaign.started"],
    },
    (
        "api/v1/webhook-endpoints/<str:endpoint_id>/deliveries/<str:delivery_id>/resend",
        "post",
    ): lambda w: {},
}

# A value of each JSON type; a wrong-type mutation uses the first one the schema refuses.
VALUES_BY_TYPE = (12345, "text", True, ["text"], {"key": "text"}, 1.5)


def schema_path(route: str) -> str:
    return "/" + route.replace("<str:", "{").replace(">", "}")


def _resolve(schema: dict) -> dict:
    components = published_schema()["components"]["schemas"]
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _object_schemas(schema: dict) -> list[dict]:
    """The object schemas a value may match (a polymorphic body has several)."""
    schema = _resolve(schema)
    options = schema.get("oneOf") or schema.get("anyOf") or schema.get("allOf")
    if options:
        return [s for option in options for s in _object_schemas(option)]
    return [schema] if "properties" in schema else []


def mutations(body: dict, schema: dict, place: str = ""):
    """(name, mutated body) pairs: each change made at `place` within the body's objects."""
    schemas = _object_schemas(schema)
    if not schemas:
        return
    yield f"{place or 'body'}: unknown key", lambda b: b.update(colour="red")
    required = {name for s in schemas for name in s.get("required", [])}
    properties = {name: prop for s in schemas for name, prop in s["properties"].items()}
    for name, value in body.items():
        where = f"{place}.{name}" if place else name
        for bad in VALUES_BY_TYPE:
            if type(bad) is not type(value):
                yield f"{where}: {type(bad).__name__}", _setter(name, bad)
        if isinstance(value, str):
            yield f"{where}: NUL", _setter(name, value[:1] + "\x00" + value[1:])
        if name in required:
            yield f"{where}: missing", lambda b, name=name: b.pop(name)
        child = properties.get(name, {})
        if isinstance(value, dict):
            yield from _nested(mutations(value, child, where), name)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            items = _resolve(child).get("items", {})
            for change, mutate in mutations(value[0], items, f"{where}[0]"):
                yield change, _within(name, 0, mutate)


def _setter(name, value):
    return lambda body: body.__setitem__(name, value)


def _nested(changes, name):
    for change, mutate in changes:
        yield change, lambda body, mutate=mutate: mutate(body[name])


def _within(name, index, mutate):
    return lambda body: mutate(body[name][index])


CASES = [pytest.param(route, method, id=f"{method} {route}") for route, method in BODY_ROUTES]


@pytest.fixture
def contract_world(world, sandbox):
    """test_api_refusals' world, plus what good bodies name: a sender, a template with two
    parameters, a test phone, a lead the send's variables fit."""
    key, ids = world
    send = Send.objects.select_related("campaign").get(pk=ids["send_id"])
    organization = send.campaign.organization
    sender = WhatsAppNumberFactory(organization=organization)
    MessageTemplateFactory(organization=organization, name="contract_sale")
    TestPhone.objects.create(organization=organization, phone_e164=STAFF_PHONE)
    send.audience_filter_mode = Send.AudienceFilterMode.WEBHOOK_FILTERED
    send.save(update_fields=["audience_filter_mode"])
    Lead.objects.filter(pk=ids["target_id"]).update(first_name="Ann")
    # The segment holds its one lead (the factory leaves its size at 0).
    Audience.objects.filter(pk=ids["segment_id"]).update(size=1)
    send.campaign.audiences.add(int(ids["segment_id"]))
    extra = {"sender_id": sender.phone_number_id, "campaign_pk": send.campaign.pk}
    return key, {**ids, **extra}


def _schema_refuses(route: str, method: str, body) -> bool:
    """A route the schema gives no body takes none: anything in one is refused."""
    operation = published_schema()["paths"][schema_path(route)][method]
    if "requestBody" not in operation:
        return body != {}
    return any(True for _ in request_validator(schema_path(route), method).iter_errors(body))


def server_refuses(response) -> bool:
    """A 400; or, for lead events, an event rejected in the 200 answer (seed 001: a malformed
    event is that event's reject, not the call's)."""
    if response.status_code == 400:
        return True
    return response.status_code == 200 and response.json().get("rejected", 0) > 0


def _verdicts(client, contract_world, route, method, body):
    schema_refuses = _schema_refuses(route, method, body)
    response = call(client, contract_world, route, method, body)
    return schema_refuses, response


@pytest.mark.parametrize(("route", "method"), CASES)
def test_the_request_schema_refuses_exactly_what_the_server_refuses(
    client, contract_world, route, method
):
    assert (route, method) in GOOD_BODIES, f"add a good body for {method} {route}"
    good = GOOD_BODIES[route, method](contract_world[1])
    operation = published_schema()["paths"][schema_path(route)][method]
    schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    cases = [("good body", lambda body: None)]
    cases += list(mutations(good, schema.get("schema", {"properties": {}})))
    disagreements = []
    for change, mutate in cases:
        body = copy.deepcopy(good)
        mutate(body)
        schema_refuses, response = _verdicts(client, contract_world, route, method, body)
        if schema_refuses != server_refuses(response):
            disagreements.append(
                f"{change}: schema {'refuses' if schema_refuses else 'accepts'}, server "
                f"{response.status_code} {response.content[:160]!r}"
            )
    assert cases[1:], "a body route with nothing to mutate"
    assert not disagreements, "\n".join(disagreements)
