"""A send at each recipient's local time through the API (issue 16.1): the schedule's
recipientLocalTime, validated with the rest of the body, and the waves on the send."""

import pytest

from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

LOCAL = {
    "localDate": "2031-03-01",
    "localTime": "09:00",
    "timeZone": "Europe/London",
    "recipientLocalTime": True,
}


def with_schedule(body, schedule):
    created = body(id="c1")
    created["sends"][0]["schedule"] = schedule
    return created


def test_a_local_time_send_reads_back_and_fires_at_its_first_wave(api, body, segment):
    LeadFactory(audience=segment, phone_e164="+12125550123")  # New York: 14:00 UTC
    LeadFactory(audience=segment, phone_e164="+919812345678")  # India: 03:30 UTC

    response = api.post("campaigns", with_schedule(body, LOCAL))

    assert response.status_code == 201, response.json()
    [send] = response.json()["campaign"]["sends"]
    assert send["schedule"] == LOCAL | {"localTime": "09:00:00"}
    assert send["waves"] == []

    started = api.post("campaigns/c1/start")

    assert started.status_code == 200, started.json()
    [send] = started.json()["campaign"]["sends"]
    assert send["scheduledFor"] == "2031-03-01T03:30:00Z"  # 09:00 in India, the first wave


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        (
            {"scheduledFor": "2031-03-01T09:00:00Z", "recipientLocalTime": True},
            "only with localDate",
        ),
        ({"startOffsetMinutes": 30, "recipientLocalTime": True}, "only with localDate"),
        (LOCAL | {"recipientLocalTime": "yes"}, "recipientLocalTime"),
        (LOCAL | {"recipientLocalTime": None}, "recipientLocalTime"),
    ],
)
def test_a_local_time_send_needs_a_wall_time_and_a_boolean(api, body, schedule, problem):
    response = api.post("campaigns", with_schedule(body, schedule))

    assert response.status_code == 400
    assert "sends[0].schedule.recipientLocalTime" in response.json()["message"]
    assert problem in response.json()["message"]
    assert api.get("campaigns/c1").status_code == 404
