"""`POST /api/v1/campaigns/{id}/sends/{sendId}/retry` (issue 15.2): a wave as a 201, refusals
naming their field (400) or the send's state (409), another organization's sends out of reach,
and the send's `retries` in the campaign object. The rules: tests/campaigns/test_retry_failed.py."""

import pytest

from campaigns.models import Send, SendRecipient, SendWave
from setter.services import create_api_key
from tests.factories import CampaignFactory, OrganizationFactory, SendFactory

pytestmark = pytest.mark.django_db

Status = SendRecipient.Status
AT = "2031-03-01T09:00:00Z"


@pytest.fixture
def send(completed_send):
    return completed_send([(Status.FAILED, "131000"), (Status.FAILED, "131026")])


def call(client, key, path, body=None, method="post"):
    kwargs = {"headers": {"x-api-key": key}}
    if body is not None:
        kwargs |= {"data": body, "content_type": "application/json"}
    return getattr(client, method)(f"/api/v1/{path}", **kwargs)


def retry(client, send, body, key=None):
    key = key or create_api_key(send.campaign.organization, "backend")[1]
    return call(client, key, f"campaigns/{send.campaign.api_id}/sends/{send.pk}/retry", body)


def test_a_retry_answers_201_with_its_wave_and_shows_on_the_send(client, send):
    key = create_api_key(send.campaign.organization, "backend")[1]

    answer = retry(client, send, {"at": AT, "include": ["undeliverable"]}, key)

    assert answer.status_code == 201
    expected = {
        "wave": 2,
        "status": "pending",
        "scheduledFor": AT,
        "include": ["undeliverable"],
        "chosen": 0,
        "requeued": 0,
        "startedAt": None,
    }
    assert answer.json() == {"retry": expected}
    campaign = call(client, key, f"campaigns/{send.campaign.api_id}", method="get").json()
    assert campaign["campaign"]["status"] == "scheduled"
    assert campaign["campaign"]["sends"][0]["retries"] == [expected]


@pytest.mark.parametrize(
    "body,message",
    [
        ({}, "at: required"),
        ({"at": "tomorrow"}, "at: expected an ISO 8601 instant"),
        ({"at": "2031-03-01T09:00:00"}, "at: expected an ISO 8601 instant with an offset"),
        ({"at": "2020-03-01T09:00:00Z"}, "at: The retry time has passed"),
        ({"at": AT, "include": "undeliverable"}, "include: expected a list"),
        ({"at": AT, "include": ["all"]}, "include[0]: 'all' is not a failure class"),
        ({"at": AT, "colour": "red"}, "colour"),
    ],
)
def test_a_bad_retry_body_is_a_400_naming_the_field(client, send, body, message):
    answer = retry(client, send, body)

    assert answer.status_code == 400
    assert message in str(answer.json())
    assert not SendWave.objects.exists()


def test_a_send_that_is_not_completed_or_already_retrying_is_a_409(client, send):
    assert retry(client, send, {"at": AT}).status_code == 201
    again = retry(client, send, {"at": AT})
    assert again.status_code == 409
    assert "already scheduled" in str(again.json())

    sending = SendFactory(campaign=send.campaign, status=Send.Status.SENDING)
    answer = retry(client, sending, {"at": AT})
    assert answer.status_code == 409
    assert "this send is sending" in str(answer.json())


def test_another_organizations_send_is_not_found(client, send):
    other_key = create_api_key(OrganizationFactory(), "backend")[1]
    assert retry(client, send, {"at": AT}, other_key).status_code == 404
    own = CampaignFactory(organization=send.campaign.organization)
    wrong_campaign = call(
        client,
        create_api_key(send.campaign.organization, "b2")[1],
        f"campaigns/{own.api_id}/sends/{send.pk}/retry",
        {"at": AT},
    )
    assert wrong_campaign.status_code == 404
    assert not SendWave.objects.exists()
