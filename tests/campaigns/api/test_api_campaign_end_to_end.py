"""A partner runs a whole campaign through the API alone: a segment of persons, a campaign
with a UTILITY send, start now; a real Celery worker delivers it to the Meta sandbox, whose
status webhooks reach a live server, and GET reports it completed with the right counts."""

import pytest

from campaigns.tasks import engine_tick_task
from tests.campaigns.api.conftest import Api
from tests.support import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

PERSONS = [
    {"externalId": "p1", "firstName": "Ann", "phone": "+442079460001",
     "substitutionTags": [{"tag": "order", "value": "A-1"}]},
    {"externalId": "p2", "firstName": "Bob", "phoneNumber": "+442079460002",
     "substitutionTags": [{"tag": "order", "value": "A-2"}]},
    {"externalId": "p3", "firstName": "Cy", "phone": "+33612345678"},
]  # fmt: skip


def test_a_campaign_created_and_started_through_the_api_is_delivered_and_completes(
    client,
    sandbox,
    number,
    utility_template,
    workers,
    queue,
    live_server,
):
    sandbox.configure(
        webhook_url=live_server.url + "/webhooks/whatsapp",
        sent_delay_ms=0,
        delivered_delay_ms=10,
        read_delay_ms=20,
    )
    api = Api(client, number.organization)
    segment = api.post("segments", {"name": "Buyers", "persons": PERSONS}).json()["data"]
    created = api.post(
        "campaigns",
        {
            "id": "orders-shipped",
            "name": "Orders shipped",
            "senderId": number.phone_number_id,
            "segmentIds": [segment["id"]],
            "sends": [
                {
                    "template": "order_update",
                    "parameters": ['{{ lead.variables.order|default:"(no order)" }}'],
                }
            ],
        },
    )
    assert created.status_code == 201, created.json()
    started = api.post("campaigns/orders-shipped/start")
    assert started.json()["campaign"]["status"] == "scheduled", started.json()

    workers()

    def stats_when_done():
        engine_tick_task.apply_async(queue=queue)  # beat's job, in the worker
        campaign = api.get("campaigns/orders-shipped").json()["campaign"]
        done = campaign["status"] == "completed" and campaign["stats"]["counts"]["read"] == 3
        return campaign if done else None

    campaign = wait_until(stats_when_done, timeout=90, interval=0.5)

    stats = campaign["stats"]
    assert stats["recipients"] == 3
    assert stats["messagesSent"] == 3
    assert stats["counts"] | {"read": 0} == dict.fromkeys(stats["counts"], 0)
    assert stats["progress"] == 1.0
    assert stats["limitedReporting"] == 3  # UK and France: Meta reports little there
    assert stats["startedAt"] and stats["completedAt"]
    assert campaign["sends"][0]["status"] == "completed"
    sent = {r["to"].lstrip("+"): r for r in sandbox.requests()["requests"]}
    assert sorted(sent) == ["33612345678", "442079460001", "442079460002"]
    assert sandbox.stats()["duplicate_recipients"] == 0
