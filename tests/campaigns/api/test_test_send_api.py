"""`POST /api/v1/campaigns/{id}/sends/{sendId}/test` and `GET …/test/{testSendId}` (issue
15.1): the result as a 201, refusals naming their field, the hourly allowance as a 429 with
Retry-After, and another organization's sends out of reach. The rules themselves:
tests/campaigns/test_test_sends.py."""

import pytest

from campaigns.models import TestSend
from setter.services import create_api_key
from tests.factories import CampaignFactory, OrganizationFactory, SendFactory
from tests.support import STAFF_PHONE

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(testable_send):
    return create_api_key(testable_send.campaign.organization, "backend")[1]


def call(client, key, path, body=None, method="post"):
    kwargs = {"headers": {"x-api-key": key}}
    if body is not None:
        kwargs |= {"data": body, "content_type": "application/json"}
    return getattr(client, method)(f"/api/v1/{path}", **kwargs)


def endpoint(send) -> str:
    return f"campaigns/{send.campaign.api_id}/sends/{send.pk}/test"


def test_a_test_send_answers_201_with_its_result(client, key, testable_send, sandbox):
    bob = testable_send.campaign.audiences.get().leads.get(first_name="Bob")

    answer = call(
        client, key, endpoint(testable_send), {"phone": STAFF_PHONE, "leadId": str(bob.pk)}
    )

    assert answer.status_code == 201
    result = answer.json()["testSend"]
    [request] = sandbox.requests()["requests"]
    assert result | {"testSendId": None, "sentAt": None} == {
        "testSendId": None,
        "phone": STAFF_PHONE,
        "leadId": str(bob.pk),
        "parameters": ["Bob", "C1"],
        "headerParameters": [],
        "buttonParameters": [],
        "body": "Hi Bob, C1 off!",
        "status": "sent",
        "wamid": request["wamid"],
        "error": None,
        "sentAt": None,
        "deliveredAt": None,
        "readAt": None,
        "failedAt": None,
    }
    again = call(client, key, f"{endpoint(testable_send)}/{result['testSendId']}", method="get")
    assert again.json() == {"testSend": result}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"phone": STAFF_PHONE, "colour": "red"}, 400, "colour: unknown key"),
        ({}, 400, "phone: required"),
        ({"phone": "+447911123999"}, 400, "is not one of your organization's test phones"),
        ({"phone": STAFF_PHONE, "leadId": "999999"}, 404, "leadId: no lead '999999'"),
    ],
)
def test_a_refused_test_send_names_its_field_and_sends_nothing(
    client, key, testable_send, sandbox, body, status, message
):
    answer = call(client, key, endpoint(testable_send), body)

    assert answer.status_code == status
    assert message in answer.json()["message"]
    assert sandbox.requests()["count"] == 0
    assert not TestSend.objects.exists()


def test_past_the_hourly_allowance_it_is_a_429_with_retry_after(
    client, key, testable_send, sandbox, settings
):
    settings.TEST_SENDS_PER_HOUR = 1
    assert call(client, key, endpoint(testable_send), {"phone": STAFF_PHONE}).status_code == 201

    answer = call(client, key, endpoint(testable_send), {"phone": STAFF_PHONE})

    assert answer.status_code == 429
    assert "made 1 test sends in the last hour" in answer.json()["message"]
    assert 3500 <= int(answer.headers["Retry-After"]) <= 3601
    assert sandbox.requests()["count"] == 1


def test_a_gate_the_send_fails_is_a_409(client, key, testable_send, sandbox):
    testable_send.template.status = "PAUSED"
    testable_send.template.save()

    answer = call(client, key, endpoint(testable_send), {"phone": STAFF_PHONE})

    assert answer.status_code == 409
    assert "is PAUSED, not APPROVED" in answer.json()["message"]
    assert sandbox.requests()["count"] == 0


def test_another_organizations_send_is_a_404(client, key, sandbox):
    foreign = SendFactory(campaign=CampaignFactory(organization=OrganizationFactory()))

    answer = call(client, key, endpoint(foreign), {"phone": STAFF_PHONE})

    assert answer.status_code == 404
    assert sandbox.requests()["count"] == 0
