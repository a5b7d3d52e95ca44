"""POST /api/v1/webhooks/lead-events, as seed 001 specifies it: one event or a batch, phones
through libphonenumber, duplicates dropped, unusable rows reported one by one."""

import datetime as dt

import pytest
from django.utils import timezone

from audiences.models import LeadEvent

from .conftest import EVENTS_URL

pytestmark = pytest.mark.django_db

WHEN = "2026-05-17T18:30:00Z"


def event(phone="+15551234567", event_type="mastery_purchase", occurred_at=WHEN):
    return {"phoneE164": phone, "eventType": event_type, "occurredAt": occurred_at}


def stored():
    return sorted(
        (e.phone_e164, e.event_type, e.occurred_at.isoformat()) for e in LeadEvent.objects.all()
    )


@pytest.fixture
def post_events(api_key_partner, post_webhook):
    def post(payload):
        return post_webhook(EVENTS_URL, payload, api_key_partner.bearer())

    return post


def test_a_single_event_is_stored(post_events, api_key_partner):
    response = post_events(event())

    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": 0, "rejects": []}
    stored_event = LeadEvent.objects.get()
    assert stored_event.organization == api_key_partner.organization
    assert stored() == [("+15551234567", "mastery_purchase", "2026-05-17T18:30:00+00:00")]


def test_a_phone_with_or_without_plus_is_the_same_lead(post_events):
    response = post_events(
        {"events": [event("+15551234567"), event("15551234567"), event("+1 555-123-4567")]}
    )

    assert response.json() == {"accepted": 1, "duplicates": 2, "rejected": 0, "rejects": []}
    assert stored() == [("+15551234567", "mastery_purchase", "2026-05-17T18:30:00+00:00")]


def test_the_same_instant_written_with_another_offset_is_a_duplicate(post_events):
    response = post_events(
        {"events": [event(occurred_at=WHEN), event(occurred_at="2026-05-17T20:30:00+02:00")]}
    )

    assert response.json()["duplicates"] == 1
    assert LeadEvent.objects.count() == 1


def test_duplicates_across_calls_are_dropped_silently(post_events):
    batch = {"events": [event("+447700900001"), event("+447700900002")]}
    post_events(batch)

    again = post_events({"events": [*batch["events"], event("+447700900003")]})

    assert again.status_code == 200
    assert again.json() == {"accepted": 1, "duplicates": 2, "rejected": 0, "rejects": []}
    assert LeadEvent.objects.count() == 3


def test_event_types_are_case_sensitive(post_events):
    response = post_events({"events": [event(event_type="purchase"), event(event_type="Purchase")]})

    assert response.json()["accepted"] == 2


def test_unusable_rows_are_rejected_one_by_one_and_the_rest_stored(post_events):
    soon = (timezone.now() + dt.timedelta(minutes=1)).isoformat()
    far_future = (timezone.now() + dt.timedelta(hours=1)).isoformat()
    events = [
        event("+447700900001"),
        event("12"),
        {"eventType": "purchase", "occurredAt": WHEN},
        event(event_type=""),
        event(occurred_at="2026-05-17T18:30:00"),
        event(occurred_at="yesterday"),
        event(occurred_at=far_future),
        "not an object",
        event(15551234567),
        event("+447700900002", occurred_at=soon),
        event(event_type="x" * 101),
    ]

    response = post_events({"events": events})

    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 0, 9)
    reasons = {reject["index"]: reject["reason"] for reject in body["rejects"]}
    assert reasons == {
        1: "phoneE164 is not a valid phone number: '12'.",
        2: "phoneE164 is missing.",
        3: "eventType is missing.",
        4: "occurredAt needs a UTC offset, e.g. 2026-05-17T18:30:00Z.",
        5: "occurredAt is not an ISO 8601 date-time: 'yesterday'.",
        6: "occurredAt is in the future.",
        7: "Expected an object with phoneE164, eventType and occurredAt.",
        8: "phoneE164 must be a string.",
        10: "eventType is longer than 100 characters.",
    }
    assert [phone for phone, _, _ in stored()] == ["+447700900001", "+447700900002"]


def test_a_single_unusable_event_is_a_reject_not_an_error(post_events):
    response = post_events(event(occurred_at="2026-13-45T00:00:00Z"))

    assert response.status_code == 200
    assert response.json()["rejected"] == 1
    assert response.json()["rejects"][0]["index"] == 0
    assert LeadEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        pytest.param(b'{"events": [', "$", id="malformed JSON"),
        pytest.param([event()], "$", id="bare list"),
        pytest.param("purchase", "$", id="string body"),
        pytest.param({"events": event()}, "events", id="events not a list"),
        pytest.param({"events": []}, "events", id="no events"),
        pytest.param({"events": [event()] * 50_001}, "events", id="50001 events"),
    ],
)
def test_a_wrong_shape_gets_400_and_stores_nothing(post_events, payload, field):
    response = post_events(payload)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert LeadEvent.objects.count() == 0


def test_a_batch_of_50000_events_is_stored(post_events):
    events = [event(f"+4479{n:08d}", "webinar_attended") for n in range(50_000)]

    response = post_events({"events": events})

    assert response.json() == {"accepted": 50_000, "duplicates": 0, "rejected": 0, "rejects": []}
    assert LeadEvent.objects.count() == 50_000
