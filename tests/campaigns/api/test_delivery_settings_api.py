"""`GET`/`PATCH /api/v1/organization/delivery-settings` (issue 16.5): the organization's default
zone, frequency cap and quality-guard thresholds, changed key by key and checked like the admin
checks them; a bad value is a 400 naming it and changes nothing."""

from decimal import Decimal

import pytest

from setter.models import Organization

pytestmark = pytest.mark.django_db

DEFAULTS = {
    "defaultTimeZone": "",
    "effectiveTimeZone": "UTC",
    "frequencyCap": {"messages": None, "days": 7, "utility": False},
    "qualityGuard": {"failurePercent": 20, "failureWindow": 200, "stopPercent": 2.0},
    "sendWindow": None,
}
PATH = "organization/delivery-settings"


def test_the_settings_read_as_their_defaults_and_change_key_by_key(api):
    assert api.get(PATH).json() == {"deliverySettings": DEFAULTS}

    answer = api.patch(
        PATH,
        {
            "defaultTimeZone": "Europe/Madrid",
            "frequencyCap": {"messages": 2},
            "qualityGuard": {"stopPercent": 1.5},
        },
    )

    assert answer.status_code == 200
    expected = DEFAULTS | {
        "defaultTimeZone": "Europe/Madrid",
        "effectiveTimeZone": "Europe/Madrid",
        "frequencyCap": {"messages": 2, "days": 7, "utility": False},
        "qualityGuard": {"failurePercent": 20, "failureWindow": 200, "stopPercent": 1.5},
    }
    assert answer.json() == {"deliverySettings": expected}
    stored = Organization.objects.get(pk=api.organization.pk)
    assert (stored.frequency_cap_messages, stored.guard_stop_percent) == (2, Decimal("1.50"))
    assert (
        api.patch(PATH, {"frequencyCap": {"messages": None}}).json()["deliverySettings"][
            "frequencyCap"
        ]["messages"]
        is None
    )


@pytest.mark.parametrize(
    "body,message",
    [
        ({"defaultTimeZone": "Mars/Olympus"}, "defaultTimeZone: 'Mars/Olympus' is not an IANA"),
        ({"frequencyCap": {"messages": 0}}, "frequencyCap.messages: Ensure this value is greater"),
        ({"frequencyCap": {"messages": -1}}, "frequencyCap.messages: "),
        ({"frequencyCap": {"days": 400}}, "frequencyCap.days: Ensure this value is less"),
        ({"frequencyCap": {"messages": "2"}}, "frequencyCap.messages: expected an integer"),
        ({"frequencyCap": {"utility": "yes"}}, "frequencyCap.utility: expected true or false"),
        ({"frequencyCap": {"cap": 2}}, "frequencyCap.cap: unknown key"),
        ({"frequencyCap": 2}, "frequencyCap: expected an object"),
        ({"qualityGuard": {"failurePercent": 101}}, "qualityGuard.failurePercent: Ensure"),
        ({"qualityGuard": {"failureWindow": 5}}, "qualityGuard.failureWindow: Ensure"),
        ({"qualityGuard": {"stopPercent": 0}}, "qualityGuard.stopPercent: Ensure"),
        ({"qualityGuard": {"stopPercent": True}}, "qualityGuard.stopPercent: expected a number"),
        ({"quietHours": {}}, "quietHours: unknown key"),
    ],
)
def test_a_bad_setting_is_a_400_naming_it_and_changes_nothing(api, body, message):
    before = Organization.objects.filter(pk=api.organization.pk).values().get()

    answer = api.patch(PATH, {**body, "frequencyCap": body.get("frequencyCap", {"messages": 3})})

    assert answer.status_code == 400
    assert message in answer.json()["message"]
    assert Organization.objects.filter(pk=api.organization.pk).values().get() == before
