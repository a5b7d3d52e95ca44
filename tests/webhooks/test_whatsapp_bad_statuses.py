"""One bad status report in a signed Meta delivery is skipped, logged and counted in /metrics;
the rest of the batch is applied and Meta gets its 200, so it never redelivers the batch."""

import copy
import json

import pytest
from django.utils import timezone

from campaigns.models import SendRecipient
from tests.config.test_metrics import scrape
from tests.factories import SendFactory, WhatsAppNumberFactory

from .test_whatsapp_webhook import fixture, post

pytestmark = pytest.mark.django_db
Status = SendRecipient.Status
PHONE_NUMBER_ID = "1122334455667"

# (field reported, what the bad status carries)
BAD_STATUSES = [
    ("timestamp", {"timestamp": "99999999999999999999"}),
    ("timestamp", {"timestamp": 99999999999999999999}),
    ("timestamp", {"timestamp": "1e9"}),
    ("timestamp", {"timestamp": "yesterday"}),
    ("timestamp", {"timestamp": "-5"}),
    ("timestamp", {"timestamp": 1.5}),
    ("timestamp", {"timestamp": None}),
    ("timestamp", {"timestamp": "253402300800"}),  # year 10000
    ("timestamp", {"timestamp": "¹²³"}),
    ("id", {"id": "wamid." + "x" * 200}),
    ("id", {"id": "wamid.\u0000"}),
    ("id", {"id": ["wamid.1"]}),
    ("status", {"status": {"failed": True}}),
    ("errors.code", {"status": "failed", "errors": [{"code": "1" * 17, "title": "t"}]}),
    ("errors.code", {"status": "failed", "errors": [{"code": 10**20, "title": "t"}]}),
    ("errors.title", {"status": "failed", "errors": [{"code": 131026, "title": "t" * 256}]}),
    ("errors.title", {"status": "failed", "errors": [{"code": 131026, "title": "a\u0000b"}]}),
    (
        "errors.error_data.details",
        {"status": "failed", "errors": [{"code": 1, "error_data": {"details": "\u0000"}}]},
    ),
    ("errors", {"status": "failed", "errors": ["boom"]}),
    ("biz_opaque_callback_data", {"biz_opaque_callback_data": {"id": 1}}),
]


@pytest.fixture
def recipients():
    number = WhatsAppNumberFactory(phone_number_id=PHONE_NUMBER_ID)
    send = SendFactory(campaign__whatsapp_number=number, campaign__organization=number.organization)
    return [
        SendRecipient.objects.create(
            send=send,
            phone_e164=f"+4420794600{i:02d}",
            status=Status.SENDING,
            wamid=f"wamid.{i}",
            sent_at=timezone.now(),
        )
        for i in range(3)
    ]


def batch_with(bad_fields: dict) -> dict:
    """Three delivered reports for wamid.0–2 in one change, the middle one spoiled."""
    payload = fixture("message_status", "delivered")
    value = payload["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = PHONE_NUMBER_ID
    template = value["statuses"][0]
    value["statuses"] = [dict(copy.deepcopy(template), id=f"wamid.{i}") for i in range(3)]
    value["statuses"][1].update(bad_fields)
    return payload


@pytest.mark.parametrize(
    ("field", "bad_fields"), BAD_STATUSES, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_STATUSES)]
)
def test_a_bad_status_is_skipped_logged_and_counted_and_the_rest_applies(
    client, recipients, caplog, field, bad_fields
):
    response = post(client, batch_with(bad_fields))

    assert response.status_code == 200
    assert json.loads(response.content)[f"rejected:{field}"] == 1
    statuses = dict(SendRecipient.objects.values_list("wamid", "status"))
    assert statuses["wamid.0"] == statuses["wamid.2"] == Status.DELIVERED
    assert statuses.get("wamid.1", Status.SENDING) == Status.SENDING
    assert SendRecipient.objects.get(pk=recipients[1].pk).status == Status.SENDING
    assert "bad webhook status skipped" in caplog.text
    assert scrape(client)[f'setter_whatsapp_statuses_rejected_total{{field="{field}"}}'] == 1


def test_the_counter_adds_up_across_deliveries(client, recipients):
    for _ in range(2):
        post(client, batch_with({"timestamp": "99999999999999999999"}))
    post(client, batch_with({"status": "failed", "errors": [{"code": "x" * 40}]}))

    samples = scrape(client)
    assert samples['setter_whatsapp_statuses_rejected_total{field="timestamp"}'] == 2
    assert samples['setter_whatsapp_statuses_rejected_total{field="errors.code"}'] == 1


def test_a_failed_status_with_numeric_code_and_a_title_at_the_column_limit_applies(
    client, recipients
):
    title = "t" * 255
    post(client, batch_with({"status": "failed", "errors": [{"code": 131026, "title": title}]}))

    failed = SendRecipient.objects.get(pk=recipients[1].pk)
    assert (failed.status, failed.error_code, failed.error_title) == (
        Status.FAILED,
        "131026",
        title,
    )


def test_a_body_nested_deeper_than_the_parser_goes_is_acknowledged(client):
    assert post(client, b"[" * 100_000 + b"]" * 100_000).status_code == 200
