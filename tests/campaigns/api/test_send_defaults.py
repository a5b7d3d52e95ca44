"""What a send created through the API takes when the body does not say: the same zone and
order as a new send in the admin (the organization's default zone, after the last send)."""

import datetime as dt

import pytest

from campaigns.models import Send

pytestmark = pytest.mark.django_db

SEND = {"template": "spring_sale", "parameters": ["{{ lead.first_name }}", "20%"]}


@pytest.fixture
def sao_paulo(organization):
    organization.default_time_zone = "America/Sao_Paulo"
    organization.save()
    return organization


def sends_of(api, campaign_id: str) -> list[dict]:
    return api.get(f"campaigns/{campaign_id}").json()["campaign"]["sends"]


def test_a_local_time_without_a_zone_is_in_the_organizations_zone(api, body, sao_paulo):
    schedule = {"localDate": "2031-03-01", "localTime": "09:00"}

    response = api.post("campaigns", body(id="c1", sends=[SEND | {"schedule": schedule}]))

    assert response.status_code == 201
    [send] = response.json()["campaign"]["sends"]
    assert send["schedule"] == schedule | {
        "localTime": "09:00:00",
        "timeZone": "America/Sao_Paulo",
        "recipientLocalTime": False,
    }
    assert send["scheduledFor"] == "2031-03-01T12:00:00Z"  # São Paulo is UTC−3


def test_without_a_default_zone_the_first_numbers_country_zone_is_taken(api, body, sender):
    assert sender.display_phone_number.startswith("+1 555")  # no area zone: the country's
    schedule = {"localDate": "2031-03-01", "localTime": "09:00"}

    api.post("campaigns", body(id="c1", sends=[SEND | {"schedule": schedule}]))

    [send] = sends_of(api, "c1")
    assert send["schedule"]["timeZone"] == "America/New_York"
    assert send["scheduledFor"] == "2031-03-01T14:00:00Z"  # EST


def test_a_named_zone_is_kept(api, body, sao_paulo):
    api.post("campaigns", body(id="c1"))  # its send says Europe/London

    [send] = sends_of(api, "c1")
    assert send["schedule"]["timeZone"] == "Europe/London"


def test_an_instant_reads_back_as_the_same_instant_in_the_organizations_zone(api, body, sao_paulo):
    instant = {"scheduledFor": "2031-03-01T12:30:00Z"}

    api.post("campaigns", body(id="c1", sends=[SEND | {"schedule": instant}]))

    [send] = sends_of(api, "c1")
    assert send["schedule"] == {
        "localDate": "2031-03-01",
        "localTime": "09:30:00",
        "timeZone": "America/Sao_Paulo",
        "recipientLocalTime": False,
    }
    assert send["scheduledFor"] == "2031-03-01T12:30:00Z"


def test_an_instant_whose_wall_time_happens_twice_in_the_zone_stays_in_utc(api, body, organization):
    organization.default_time_zone = "Europe/London"
    organization.save()
    # 01:30 BST and 01:30 GMT both happen on 2031-10-26; this is the second one.
    instant = {"scheduledFor": "2031-10-26T01:30:00Z"}

    api.post("campaigns", body(id="c1", sends=[SEND | {"schedule": instant}]))

    [send] = sends_of(api, "c1")
    assert send["schedule"] == {
        "localDate": "2031-10-26",
        "localTime": "01:30:00",
        "timeZone": "UTC",
        "recipientLocalTime": False,
    }
    assert send["scheduledFor"] == "2031-10-26T01:30:00Z"


def test_a_send_fired_by_the_start_takes_its_local_time_in_the_organizations_zone(
    api, body, sao_paulo
):
    api.post("campaigns", body(id="c1", sends=[SEND | {"schedule": {"startOffsetMinutes": 90}}]))
    assert Send.objects.get().time_zone == "America/Sao_Paulo"

    response = api.post("campaigns/c1/start", {"scheduledFor": "2031-05-01T10:00:00Z"})

    assert response.status_code == 200
    send = Send.objects.get()
    assert send.scheduled_for == dt.datetime(2031, 5, 1, 11, 30, tzinfo=dt.UTC)
    assert (send.local_date, send.local_time, send.time_zone) == (
        dt.date(2031, 5, 1),
        dt.time(8, 30),
        "America/Sao_Paulo",
    )


def test_sends_follow_one_another_in_the_bodys_order_and_again_after_an_update(api, body):
    sends = [SEND | {"name": name, "schedule": {"startOffsetMinutes": 0}} for name in "abc"]
    api.post("campaigns", body(id="c1", sends=sends))

    assert [(s["name"], s["position"]) for s in sends_of(api, "c1")] == [
        ("a", 0),
        ("b", 1),
        ("c", 2),
    ]

    api.patch("campaigns/c1", {"sends": sends[2:0:-1]})

    assert [(s["name"], s["position"]) for s in sends_of(api, "c1")] == [("c", 0), ("b", 1)]
