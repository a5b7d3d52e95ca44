"""/api/v1/webhook-endpoints: a partner registers its endpoints with its API key; the secret is
shown once; another organization's ids are not found."""

import orjson
import pytest
import yaml
from django.db import transaction

from setter.services import create_api_key
from tests.factories import OrganizationFactory
from webhooks.models import EventType, WebhookDelivery, WebhookEndpoint
from webhooks.outbound import services

URL = "/api/v1/webhook-endpoints"


@pytest.fixture
def api(client, organization):
    key = create_api_key(organization, "CRM")[1]

    def call(method, path, payload=None, key=key):
        body = orjson.dumps(payload) if payload is not None else b""
        return getattr(client, method)(
            path, body, content_type="application/json", headers={"x-api-key": key}
        )

    return call


def test_a_partner_registers_lists_gets_and_deletes_an_endpoint(api, organization):
    created = api("post", URL, {"url": "https://crm.example.com/setter", "eventTypes": []})

    assert created.status_code == 201
    body = created.json()
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert body["secret"] == endpoint.secret and body["secret"].startswith("whsec_")
    assert (body["url"], body["eventTypes"], body["active"]) == (endpoint.url, [], True)

    listed = api("get", URL).json()["data"]
    assert [e["id"] for e in listed] == [body["id"]] and "secret" not in listed[0]
    got = api("get", f"{URL}/{body['id']}").json()
    assert got == {k: v for k, v in body.items() if k != "secret"}

    assert api("delete", f"{URL}/{body['id']}").status_code == 204
    assert not WebhookEndpoint.objects.exists()


def test_an_endpoint_may_choose_its_events(api):
    body = api("post", URL, {"url": "https://crm.example.com/h", "eventTypes": ["send.completed"]})

    assert body.json()["eventTypes"] == ["send.completed"]


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"url": "ftp://crm.example.com/h"}, "url"),
        ({"url": "not a url"}, "url"),
        ({}, "url"),
        ({"url": "https://crm.example.com/h", "eventTypes": ["message.new"]}, "eventTypes"),
    ],
)
def test_a_bad_body_is_a_400_naming_the_field(api, payload, where):
    answer = api("post", URL, payload)

    assert answer.status_code == 400
    assert answer.json()["message"].startswith(where) and answer.json()["error"] == "Bad Request"
    assert not WebhookEndpoint.objects.exists()


def test_the_number_of_endpoints_is_bounded(api, organization):
    for n in range(services.MAX_ENDPOINTS_PER_ORGANIZATION):
        services.create_endpoint(organization, f"https://crm.example.com/{n}")

    answer = api("post", URL, {"url": "https://crm.example.com/one-more"})

    assert answer.status_code == 400 and "at most" in answer.json()["message"]


def test_another_organizations_endpoint_is_not_found(api):
    foreign = services.create_endpoint(OrganizationFactory(), "https://other.example.com/h")
    delivery = WebhookDelivery.objects.create(
        endpoint=foreign, event_id="msg_x", event_type=EventType.SEND_STARTED, payload={}
    )

    for method, path in [
        ("get", f"{URL}/{foreign.pk}"),
        ("delete", f"{URL}/{foreign.pk}"),
        ("get", f"{URL}/{foreign.pk}/deliveries"),
        ("post", f"{URL}/{foreign.pk}/deliveries/{delivery.pk}/resend"),
        ("get", f"{URL}/nope"),
    ]:
        answer = api(method, path)
        assert answer.status_code == 404, path
        assert answer.json() == {
            "statusCode": 404,
            "message": "Webhook endpoint not found.",
            "error": "Not Found",
        }
    assert api("get", URL).json() == {"data": []}
    assert WebhookEndpoint.objects.filter(pk=foreign.pk).exists()


def test_without_a_key_it_is_401(client):
    answer = client.get(URL)

    assert answer.status_code == 401
    assert answer.json() == {"statusCode": 401, "message": "Unauthorized"}


@pytest.mark.django_db(transaction=True)
def test_a_partner_lists_deliveries_and_resends_one(api, organization):
    endpoint = services.create_endpoint(organization, "http://127.0.0.1:9/closed")
    with transaction.atomic():
        (delivery_id,) = services.emit_event(organization, EventType.SEND_COMPLETED, {"x": 1})
    WebhookDelivery.objects.filter(pk=delivery_id).update(
        status=WebhookDelivery.Status.FAILED, attempt_count=8
    )
    base = f"{URL}/{endpoint.pk}/deliveries"

    (listed,) = api("get", f"{base}?status=failed").json()["data"]
    assert (listed["id"], listed["eventType"], listed["attemptCount"]) == (
        str(delivery_id),
        "send.completed",
        8,
    )
    assert api("get", f"{base}?status=succeeded").json() == {"data": []}
    assert api("get", f"{base}?status=bogus").status_code == 400

    answer = api("post", f"{base}/{delivery_id}/resend")
    assert answer.status_code == 202
    assert answer.json()["eventId"] == listed["eventId"]
    assert answer.json()["attemptCount"] == 0
    # The commit hook claimed it for a worker: a second re-send must wait.
    assert api("post", f"{base}/{delivery_id}/resend").status_code == 409
    assert api("post", f"{base}/999999/resend").status_code == 404


def test_the_endpoints_are_in_the_openapi_schema(client):
    schema = yaml.safe_load(client.get("/api/schema/").content)

    assert {"post", "get"} <= set(schema["paths"]["/api/v1/webhook-endpoints"])
    assert (
        "/api/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/resend"
        in (schema["paths"])
    )
