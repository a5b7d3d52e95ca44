"""Quiet hours in the REST API (issue 16.2/16.5): a campaign's `sendWindow` and the
organization's default in its delivery settings, taken, shown and refused by one declaration."""

import datetime as dt

import pytest

from campaigns.models import Campaign
from setter.models import Organization

pytestmark = pytest.mark.django_db

WINDOW = {"start": "09:00", "end": "20:00", "days": ["mon", "tue", "fri"], "outside": "skip"}


def create_body(sender, segment, template, **extra):
    send = {
        "template": template.name,
        "language": template.language,
        "parameters": ["{{ lead.first_name }}", "20%"],
        "schedule": {"localDate": "2031-03-03", "localTime": "10:00", "timeZone": "UTC"},
    }
    return {
        "id": "quiet",
        "senderId": sender.phone_number_id,
        "segmentIds": [str(segment.pk)],
        "sends": [send],
        **extra,
    }


def test_a_campaigns_window_is_stored_shown_and_cleared(api, sender, segment, sale_template):
    created = api.post("campaigns", create_body(sender, segment, sale_template, sendWindow=WINDOW))

    assert created.status_code == 201, created.json()
    assert created.json()["campaign"]["sendWindow"] == WINDOW
    campaign = Campaign.objects.get(api_id="quiet")
    assert (campaign.window_start, campaign.window_end, campaign.window_days) == (
        dt.time(9),
        dt.time(20),
        [0, 1, 4],
    )
    cleared = api.patch("campaigns/quiet", {"sendWindow": None})
    assert cleared.json()["campaign"]["sendWindow"] is None
    assert Campaign.objects.get(api_id="quiet").window_start is None


@pytest.mark.parametrize(
    "window,message",
    [
        ({"start": "20:00", "end": "09:00"}, "sendWindow.end: The send window must end after"),
        ({"start": "09:00"}, "sendWindow.end: "),
        ({"start": "9am", "end": "20:00"}, "sendWindow.start: a wall-clock time"),
        ({"start": "09:00", "end": "20:00", "days": ["sunday"]}, "sendWindow.days[0]: one of"),
        ({"start": "09:00", "end": "20:00", "days": []}, "sendWindow.days: may not be empty"),
        ({"start": "09:00", "end": "20:00", "outside": "drop"}, "sendWindow.outside: one of"),
        ({"start": "09:00", "end": "20:00", "quiet": True}, "sendWindow.quiet: unknown key"),
    ],
)
def test_a_bad_window_is_a_400_naming_its_place(
    api, sender, segment, sale_template, window, message
):
    answer = api.post("campaigns", create_body(sender, segment, sale_template, sendWindow=window))

    assert answer.status_code == 400
    assert message in answer.json()["message"]
    assert not Campaign.objects.exists()


def test_the_organizations_window_is_a_delivery_setting(api):
    path = "organization/delivery-settings"
    assert api.get(path).json()["deliverySettings"]["sendWindow"] is None

    answer = api.patch(path, {"sendWindow": {"start": "08:30", "end": "21:00"}})

    assert answer.json()["deliverySettings"]["sendWindow"] == {
        "start": "08:30",
        "end": "21:00",
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "outside": "wait",
    }
    inverted = api.patch(path, {"sendWindow": {"start": "21:00", "end": "08:30"}})
    assert inverted.status_code == 400
    assert "sendWindow.end: The send window must end after" in inverted.json()["message"]
    assert Organization.objects.get(pk=api.organization.pk).window_end == dt.time(21)
