"""Every route of the REST API and the partner webhooks, read from the URL conf, refuses what
it cannot honour with a 400 naming the place: unknown keys, NUL characters, control characters
in path ids, a sort field that is not a name. A new endpoint is in these tests by existing."""

import orjson
import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from setter.ids import pk_from_text
from setter.services import create_api_key
from tests.api_schema import published_schema
from tests.factories import (
    OrganizationFactory,
    SendFactory,
)

pytestmark = pytest.mark.django_db

BODY_METHODS = ("post", "put", "patch")


def api_routes():
    """(route, view class) of every DRF view under /api/v1/."""
    found = []

    def walk(patterns, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                view = getattr(pattern.callback, "cls", None)
                route = prefix + str(pattern.pattern)
                if route.startswith("api/v1/") and view and issubclass(view, APIView):
                    found.append((route, view))

    walk(get_resolver().url_patterns, "")
    return found


ROUTES = api_routes()
BODY_ROUTES = [
    (route, method) for route, view in ROUTES for method in BODY_METHODS if hasattr(view, method)
]
PATH_ROUTES = [
    (route, method)
    for route, view in ROUTES
    if "<" in route
    for method in ("get", "delete", *BODY_METHODS)
    if hasattr(view, method)
]
QUERY_ROUTES = [(route, "post") for route, _ in ROUTES if route.endswith("/query")]


def call(client, world, route, method, body, **path_ids):
    key, ids = world
    path = route
    while "<" in path:
        start, end = path.index("<"), path.index(">")
        name = path[start + 1 : end].split(":")[-1]
        assert name in ids, f"add an object for <{name}> to the world fixture"
        path = path[:start] + path_ids.get(name, ids[name]) + path[end + 1 :]
    headers = {"x-api-key": key, "Authorization": f"Bearer {key}"}
    if method in BODY_METHODS:
        return getattr(client, method)(
            "/" + path, orjson.dumps(body), content_type="application/json", headers=headers
        )
    return getattr(client, method)("/" + path, headers=headers)


def test_the_url_conf_has_every_body_route_the_schema_describes():
    """The walk above finds the routes: the schema's body operations are all among them."""
    schema_operations = {
        (path, method)
        for path, item in published_schema()["paths"].items()
        for method, operation in item.items()
        if path.startswith("/api/v1/") and method in BODY_METHODS
    }
    walked = {
        ("/" + route.replace("<str:", "{").replace(">", "}"), method)
        for route, method in BODY_ROUTES
    }
    assert schema_operations <= walked
    assert len(BODY_ROUTES) >= 15


@pytest.mark.parametrize(("route", "method"), BODY_ROUTES)
def test_unknown_keys_are_refused_by_name(client, world, route, method):
    response = call(client, world, route, method, {"bogusKey": 1, "created_channels": True})

    assert response.status_code == 400, response.content
    text = response.content.decode()
    assert "bogusKey" in text and "created_channels" in text
    assert "unknown key" in text


def test_a_snake_case_spelling_is_answered_with_the_key_it_should_be(api_client):
    client, campaign = api_client
    response = client(
        "post",
        f"campaigns/{campaign.api_id}/start",
        {"scheduled_for": "2031-01-01T00:00:00Z", "stop_at": "2031-01-02T00:00:00Z"},
    )

    assert response.status_code == 400
    assert response.json()["message"] == (
        "scheduled_for: unknown key: did you mean scheduledFor?; "
        "stop_at: unknown key: did you mean stopAt?"
    )
    campaign.refresh_from_db()
    assert campaign.status == "draft"  # it used to start now


@pytest.fixture
def api_client(client, db):
    organization = OrganizationFactory()
    key = create_api_key(organization, "CRM")[1]
    campaign = SendFactory(campaign__organization=organization).campaign

    def request(method, path, body=None):
        return getattr(client, method)(
            f"/api/v1/{path}",
            orjson.dumps(body) if body is not None else None,
            content_type="application/json",
            headers={"x-api-key": key, "Authorization": f"Bearer {key}"},
        )

    return request, campaign


def _strings_with_nul(route, method) -> dict:
    """The operation's documented body with NUL in every string field it has."""
    path = "/" + route.replace("<str:", "{").replace(">", "}")
    operation = published_schema()["paths"][path][method]
    if "requestBody" not in operation:
        return {}
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    components = published_schema()["components"]["schemas"]
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return {
        name: "x\u0000y"
        for name, prop in schema.get("properties", {}).items()
        if prop.get("type") == "string"
    }


@pytest.mark.parametrize(("route", "method"), BODY_ROUTES)
def test_a_nul_in_any_string_is_a_400_naming_the_field(client, world, route, method):
    body = _strings_with_nul(route, method)
    # Deep in a free-form object too (a jsonb segment filter, a query filter).
    response = call(client, world, route, method, body or {"filter": {"name": "a\u0000"}})

    assert response.status_code == 400, response.content
    if not route.startswith("api/v1/webhooks/"):
        message = response.json()["message"]
        assert "NUL" in message or "unknown key" in message, message


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        (
            "api/v1/webhooks/campaigns/audience-filter",
            {"campaignId": 1, "sendId": 1, "mode": "include", "leads": [{"externalId": "a\u0000"}]},
            "leads[0].externalId",
        ),
        (
            "api/v1/webhooks/lead-events",
            {"phoneE164": "+447700900001", "eventType": "a\u0000", "occurredAt": "2030-01-01"},
            "eventType",
        ),
        (
            "api/v1/webhooks/lead-events",
            {"events": [{"phoneE164": "+44\u00007700900001"}]},
            "events[0].phoneE164",
        ),
    ],
)
def test_a_nul_in_a_webhook_string_is_a_400_naming_the_field(client, world, route, body, field):
    response = call(client, world, route, "post", body)

    assert response.status_code == 400
    assert {
        "field": field,
        "message": "contains a NUL character (\\u0000), which cannot be stored",
    } in (response.json()["errors"])


@pytest.mark.parametrize("bad", ["a\u0000b", "12\x1c", "\x1f12", "1\x1e2"])
@pytest.mark.parametrize(("route", "method"), PATH_ROUTES)
def test_a_control_character_in_a_path_id_is_a_400_naming_it(client, world, route, method, bad):
    name = route[route.index("<") + 1 : route.index(">")].split(":")[-1]

    response = call(client, world, route, method, {}, **{name: bad})

    assert response.status_code == 400, response.content
    assert response.json()["message"].startswith(f"{name}: control characters")


@pytest.mark.parametrize("value", ["12\x1c", "\x1d12", " 12", "12\n"])
def test_an_id_is_only_ever_its_exact_digits(value):
    assert pk_from_text(value) is None
    assert pk_from_text("12") == 12


@pytest.mark.parametrize(
    "sort", [[{"field": {}}], [{"field": ["name"]}], [{"field": 7}], [{"field": None}]]
)
@pytest.mark.parametrize(("route", "method"), QUERY_ROUTES)
def test_a_sort_field_that_is_not_a_name_is_a_400(client, world, route, method, sort):
    response = call(client, world, route, method, {"sort": sort})

    assert response.status_code == 400
    assert response.json()["message"].startswith("sort[0].field: unknown field")


def test_every_query_route_is_tried():
    assert {route for route, _ in QUERY_ROUTES} == {
        "api/v1/campaigns/query",
        "api/v1/segments/query",
        "api/v1/segments/<str:segment_id>/targets/query",
    }
