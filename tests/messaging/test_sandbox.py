"""The Meta sandbox: status webhooks, template and number reads, and its control endpoints."""

import hashlib
import hmac
import json

import pytest
import requests
from django.conf import settings

from messaging.client import WhatsAppClient
from messaging.sandbox.control import SandboxControl
from messaging.sandbox.server import SandboxThread, registry_from_database
from messaging.sandbox.state import SandboxConfig
from tests.factories import MessageTemplateFactory, WhatsAppNumberFactory
from tests.messaging.test_client import GB_PHONE, send
from tests.support import META_WEBHOOKS, wait_until

pytestmark = pytest.mark.django_db


def fixture_status(variant: str) -> tuple[dict, dict]:
    """(change value, first status) of a variant of message_status.json."""
    payload = json.loads((META_WEBHOOKS / "message_status.json").read_text())[variant]
    value = payload["entry"][0]["changes"][0]["value"]
    return value, value["statuses"][0]


def test_status_webhooks_are_signed_real_shaped_and_echo_the_callback_data(
    whatsapp_client, number, marketing_template, webhook_receiver
):
    wamid = send(whatsapp_client, number, marketing_template).wamid

    wait_until(lambda: {s["status"] for s in webhook_receiver.statuses()} >= {"read"})

    statuses = [s for s in webhook_receiver.statuses() if s["id"] == wamid]
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    for headers, body in webhook_receiver.requests:
        expected = hmac.new(settings.WHATSAPP_APP_SECRET.encode(), body, hashlib.sha256)
        assert headers["x-hub-signature-256"] == "sha256=" + expected.hexdigest()
        payload = json.loads(body)
        assert payload["object"] == "whatsapp_business_account"
        [entry] = payload["entry"]
        assert entry["id"] == number.waba_id
        [change] = entry["changes"]
        assert change["field"] == "messages"
        fixture_value, _ = fixture_status("sent")
        assert change["value"].keys() == fixture_value.keys()
        assert change["value"]["metadata"]["phone_number_id"] == number.phone_number_id
    _, tracked = fixture_status("with_tracker")
    sent = statuses[0]
    assert sent.keys() == tracked.keys()
    assert sent["biz_opaque_callback_data"] == "recipient-42"
    assert sent["recipient_id"] == GB_PHONE.lstrip("+")
    assert sent["conversation"].keys() == tracked["conversation"].keys()
    assert sent["pricing"].keys() == tracked["pricing"].keys()


def test_async_failures_post_a_failed_status_with_meta_errors(
    whatsapp_client, sandbox, number, marketing_template, webhook_receiver
):
    sandbox.configure(ratio_async_failure=1.0, async_failure_code=131026)
    wamid = send(whatsapp_client, number, marketing_template).wamid

    failed = wait_until(lambda: [s for s in webhook_receiver.statuses() if s["status"] == "failed"])

    _, fixture_failed = fixture_status("failed")
    [status] = failed
    assert status["id"] == wamid
    assert status["biz_opaque_callback_data"] == "recipient-42"
    [error] = status["errors"]
    assert error.keys() == fixture_failed["errors"][0].keys()
    assert error["code"] == 131026
    assert error["error_data"]["details"]
    assert "delivered" not in {s["status"] for s in webhook_receiver.statuses()}


def test_many_statuses_share_one_post_under_load(
    whatsapp_client, sandbox, number, marketing_template, webhook_receiver
):
    sandbox.configure(sent_delay_ms=200, delivered_delay_ms=300, read_ratio=0.0)
    for n in range(30):
        send(whatsapp_client, number, marketing_template, to=f"+4477009{n:05d}")

    wait_until(lambda: len(webhook_receiver.statuses()) == 60)

    assert len(webhook_receiver.requests) < 30


def test_webhooks_are_off_without_a_url(whatsapp_client, sandbox, number, marketing_template):
    send(whatsapp_client, number, marketing_template)

    assert sandbox.stats()["webhooks"]["pending"] == 0


def test_template_list_is_paged_like_the_graph_api(sandbox, number, marketing_template):
    for n in range(3):
        sandbox.register_template(marketing_template, number.waba_id, name=f"extra_{n}")
    url = f"{sandbox.url}/v21.0/{number.waba_id}/message_templates"
    headers = {"Authorization": f"Bearer {number.access_token}"}

    first = requests.get(url, params={"limit": 3}, headers=headers, timeout=5).json()
    second = requests.get(first["paging"]["next"], headers=headers, timeout=5).json()

    names = [t["name"] for t in first["data"] + second["data"]]
    assert names == ["extra_0", "extra_1", "extra_2", "spring_sale"]
    assert "next" not in second["paging"]
    assert first["data"][0].keys() >= {"id", "name", "language", "status", "category"}


def test_template_list_needs_the_token(sandbox, number, marketing_template):
    url = f"{sandbox.url}/v21.0/{number.waba_id}/message_templates"

    response = requests.get(url, headers={"Authorization": "Bearer wrong"}, timeout=5)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == 190


def test_number_details(sandbox, number):
    url = f"{sandbox.url}/v21.0/{number.phone_number_id}"
    headers = {"Authorization": f"Bearer {number.access_token}"}

    data = requests.get(
        url, params={"fields": "messaging_limit_tier,quality_rating"}, headers=headers, timeout=5
    ).json()

    assert data == {
        "messaging_limit_tier": "TIER_100K",
        "quality_rating": "GREEN",
        "id": number.phone_number_id,
    }


def test_bad_configuration_is_refused_and_changes_nothing(sandbox):
    before = sandbox.configure()

    for bad in [{"ratio_429": 1.5}, {"latency_ms": -1}, {"nonsense": 1}, {"ratio_5xx": "x"}]:
        response = requests.post(f"{sandbox.url}/_sandbox/config", json=bad, timeout=5)
        assert response.status_code == 400, bad
        assert response.json()["error"]

    assert sandbox.configure() == before


def test_ratios_together_may_not_exceed_one(sandbox):
    response = requests.post(
        f"{sandbox.url}/_sandbox/config", json={"ratio_429": 0.6, "ratio_5xx": 0.6}, timeout=5
    )

    assert response.status_code == 400
    assert sandbox.configure()["ratio_429"] == 0.0


def test_registration_needs_the_identifying_fields(sandbox):
    response = requests.post(
        f"{sandbox.url}/_sandbox/numbers", json={"phone_number_id": "1"}, timeout=5
    )

    assert response.status_code == 400
    assert "access_token" in response.json()["error"]


def test_reset_forgets_requests_registrations_and_configuration(
    whatsapp_client, sandbox, number, marketing_template
):
    send(whatsapp_client, number, marketing_template)
    sandbox.configure(latency_ms=5)

    sandbox.reset()

    assert sandbox.stats()["requests"] == 0
    assert sandbox.configure()["latency_ms"] == 0
    url = f"{sandbox.url}/v21.0/{number.phone_number_id}"
    response = requests.get(url, headers={"Authorization": f"Bearer {number.access_token}"})
    assert response.json()["error"]["code"] == 100


@pytest.fixture
def database_sandbox(transactional_db):
    """A sandbox started the way the management command starts it: from the database."""
    server = SandboxThread(
        SandboxConfig(), registry_from_database(), reload=registry_from_database
    ).start()
    yield server
    server.stop()


def test_sandbox_knows_the_database_and_rereads_it_for_new_numbers(database_sandbox):
    number = WhatsAppNumberFactory()
    template = MessageTemplateFactory(organization=number.organization, body_text="Hi {{1}}")
    whatsapp_client = WhatsAppClient(base_url=database_sandbox.url, timeout=(1, 5))

    result = send(whatsapp_client, number, template, parameters=["Ada"])

    assert result.wamid
    later = WhatsAppNumberFactory(organization=number.organization, waba_id=number.waba_id)
    assert send(whatsapp_client, later, template, parameters=["Ada"]).wamid
    control = SandboxControl(database_sandbox.url)
    assert control.requests(phone_number_id=later.phone_number_id)["accepted"] == 1
    assert control.configure()["app_secret"] == ""
