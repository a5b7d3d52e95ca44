"""Quiet hours (issue 16.2): a campaign's messages reach people only inside its send window in
each recipient's local time; outside it they wait for its next opening in their zone, or are
skipped with reason outside_window, as the campaign says."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from audiences.time_zones import lead_time_zone
from campaigns import dispatcher
from campaigns import sends as send_lifecycle
from campaigns.materializer import preview_send
from campaigns.models import Campaign, Send, SendRecipient
from campaigns.send_window import SendWindow
from setter.phones import phone_zones
from setter.send_windows import WindowOutside, window_problems
from tests.factories import (
    CampaignFactory,
    MessageTemplateFactory,
    OrganizationFactory,
    SendFactory,
    UserFactory,
)

from .conftest import running_send, scheduled_campaign
from .editor import ADD_URL, new_campaign_data, send_row

UTC = dt.UTC
Status = SendRecipient.Status
# Four zones whose wall clocks are ≥ 3.5 h apart whatever the date: a one-hour window open
# in one of them is closed in the three others.
PHONES_BY_ZONE = {
    "Europe/London": [f"+4477009{n:05d}" for n in range(5)],
    "America/Los_Angeles": [f"+1213555{n:04d}" for n in range(5)],
    "Asia/Tokyo": [f"+813123{n:05d}" for n in range(5)],
    "Asia/Calcutta": [f"+9198123{n:05d}" for n in range(5)],
}


def window(start, end, days=(0, 1, 2, 3, 4, 5, 6), outside=WindowOutside.WAIT):
    return SendWindow(start, end, frozenset(days), outside)


def utc(*args):
    return dt.datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    "now,zone,expected",
    [
        # Thursday 2026-12-03. Inside: no wait.
        (utc(2026, 12, 3, 12, 0), "Europe/London", None),
        # Before it opens: today at 09:00 local (Tokyo is UTC+9).
        (utc(2026, 12, 2, 22, 0), "Asia/Tokyo", utc(2026, 12, 3, 0, 0)),
        # After it closed: tomorrow at 09:00 local (Los Angeles is UTC−8 in December).
        (utc(2026, 12, 4, 5, 0), "America/Los_Angeles", utc(2026, 12, 4, 17, 0)),
        # The close is exclusive: 20:00 is outside.
        (utc(2026, 12, 3, 20, 0), "Europe/London", utc(2026, 12, 4, 9, 0)),
        # Friday evening, not on weekends: Monday 09:00.
        (utc(2026, 12, 4, 21, 0), "Europe/London", utc(2026, 12, 7, 9, 0)),
    ],
)
def test_the_next_opening_is_the_windows_start_on_the_next_open_day_in_the_zone(
    now, zone, expected
):
    weekdays = window(dt.time(9), dt.time(20), days=range(5))

    assert weekdays.next_opening(now, zone) == expected


def test_an_opening_in_a_spring_forward_gap_is_the_first_minute_the_window_is_open():
    """New York skips 02:00–03:00 on 2026-03-08: a 02:30 opening is 03:30 EDT that day."""
    early = window(dt.time(2, 30), dt.time(12))

    opening = early.next_opening(utc(2026, 3, 8, 5, 0), "America/New_York")

    assert opening == utc(2026, 3, 8, 7, 30)
    assert opening.astimezone(ZoneInfo("America/New_York")).time() == dt.time(3, 30)


@pytest.mark.parametrize(
    "start,end,days,problems",
    [
        (dt.time(9), dt.time(20), [0, 1], set()),
        (None, None, [0], set()),
        (dt.time(20), dt.time(9), [0], {"window_end"}),
        (dt.time(9), dt.time(9), [0], {"window_end"}),
        (dt.time(9), None, [0], {"window_end"}),
        (None, dt.time(9), [0], {"window_start"}),
        (dt.time(9), dt.time(20), [], {"window_days"}),
        (None, None, [], set()),
        (dt.time(9), dt.time(20), [7], {"window_days"}),
    ],
)
def test_a_window_is_both_times_in_order_on_at_least_one_day(start, end, days, problems):
    assert set(window_problems(start, end, days)) == problems


@pytest.mark.django_db
def test_a_campaign_without_a_window_follows_its_organizations():
    organization = OrganizationFactory(window_start=dt.time(8), window_end=dt.time(21))
    follows = CampaignFactory(organization=organization)
    own = CampaignFactory(
        organization=organization, window_start=dt.time(10), window_end=dt.time(12)
    )

    assert SendWindow.of(follows) == window(dt.time(8), dt.time(21))
    assert SendWindow.of(own) == window(dt.time(10), dt.time(12))
    assert SendWindow.of(CampaignFactory()) is None


def open_window_now() -> tuple[str, dt.time, dt.time]:
    """(zone, start, end): an hour around the current local time of one of the four zones
    whose clock is not near midnight."""
    now = timezone.now()
    for zone in PHONES_BY_ZONE:
        local = now.astimezone(ZoneInfo(zone))
        if dt.time(1) <= local.time() <= dt.time(23):
            start = (local - dt.timedelta(minutes=30)).time().replace(second=0, microsecond=0)
            end = (local + dt.timedelta(minutes=30)).time().replace(second=0, microsecond=0)
            return zone, start, end
    raise AssertionError("four zones ≥ 3.5 h apart cannot all be near midnight")


def expected_opening(zone: str, start: dt.time, now: dt.datetime) -> dt.datetime:
    """Computed apart from SendWindow: today's opening if still ahead, else tomorrow's."""
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    day = local.date() if local.time() < start else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, start, tzinfo=tz).astimezone(UTC)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_engine")
@pytest.mark.parametrize("outside", [WindowOutside.WAIT, WindowOutside.SKIP])
def test_only_recipients_inside_the_window_in_their_zone_are_messaged(
    sandbox, number, marketing_template, outside
):
    open_zone, start, end = open_window_now()
    phones = [phone for zone_phones in PHONES_BY_ZONE.values() for phone in zone_phones]
    assert {lead_time_zone("", *phone_zones(p), "UTC") for p in phones} == set(PHONES_BY_ZONE)
    began = timezone.now()
    send = running_send(
        number,
        marketing_template,
        phones,
        window_start=start,
        window_end=end,
        window_outside=outside,
    )

    assert dispatcher.dispatch_send(send.pk) is False  # no slice loops on rows not due

    inside = set(PHONES_BY_ZONE[open_zone])
    requested = {"+" + r["to"] for r in sandbox.requests(limit=1000)["requests"]}
    assert requested == inside
    rows = {r.phone_e164: r for r in send.recipients.all()}
    assert all(rows[p].status == Status.SENT for p in inside)
    send.refresh_from_db()
    if outside == WindowOutside.SKIP:
        assert all(
            (r.status, r.skip_reason) == (Status.SKIPPED, "outside_window")
            for p, r in rows.items()
            if p not in inside
        )
        assert send.status == Send.Status.COMPLETED
        return
    for zone, zone_phones in PHONES_BY_ZONE.items():
        if zone != open_zone:
            opening = expected_opening(zone, start, began)
            assert {(rows[p].status, rows[p].next_attempt_at) for p in zone_phones} == {
                (Status.QUEUED, opening)
            }, zone
    assert send.status == Send.Status.SENDING
    assert send.status_reason.startswith("Waiting for the send window")
    # Beat leaves a send alone while nothing of it is due, and re-dispatches it once it is.
    Send.objects.filter(pk=send.pk).update(
        dispatch_heartbeat_at=timezone.now() - dt.timedelta(hours=1)
    )
    assert send_lifecycle.stalled_send_ids() == []
    SendRecipient.objects.filter(send=send, status=Status.QUEUED).update(
        next_attempt_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert send_lifecycle.stalled_send_ids() == [send.pk]


@pytest.mark.django_db
def test_the_editor_takes_a_window_with_its_days_and_refuses_an_inverted_one(client):
    organization = OrganizationFactory()
    client.force_login(UserFactory(organization=organization))
    template = MessageTemplateFactory(organization=organization)
    data = new_campaign_data(organization, [send_row(0, template)])

    inverted = client.post(ADD_URL, data | {"window_start": "20:00", "window_end": "09:00"})

    assert inverted.status_code == 200
    assert inverted.context["adminform"].form.errors["window_end"] == [
        "The send window must end after it starts (the same day)."
    ]
    assert not Campaign.objects.exists()
    weekdays = data | {"window_start": "09:00", "window_end": "20:00", "window_days": ["0", "4"]}
    assert client.post(ADD_URL, weekdays).status_code == 302
    campaign = Campaign.objects.get()
    assert (campaign.window_start, campaign.window_end, campaign.window_days) == (
        dt.time(9),
        dt.time(20),
        [0, 4],
    )


@pytest.mark.django_db
@pytest.mark.parametrize("outside", [WindowOutside.WAIT, WindowOutside.SKIP])
def test_the_dry_run_says_per_zone_when_recipients_read_it(
    client, number, marketing_template, outside
):
    """Fired on Thursday 2026-12-03 at 12:00 UTC, a 09:00–18:00 window is open in London
    (12:00), closed in Tokyo (21:00: Friday 09:00) and Los Angeles (04:00: 09:00 that day)."""
    phones = [*PHONES_BY_ZONE["Europe/London"][:2], *PHONES_BY_ZONE["Asia/Tokyo"][:3]]
    phones.append(PHONES_BY_ZONE["America/Los_Angeles"][0])
    campaign = scheduled_campaign(
        number, phones, window_start=dt.time(9), window_end=dt.time(18), window_outside=outside
    )
    send = SendFactory(
        campaign=campaign,
        template=marketing_template,
        parameter_mapping=["first_name", "variables.coupon"],
        scheduled_for=utc(2026, 12, 3, 12, 0),
    )

    preview = preview_send(send)

    readings = {z.zone: (z.recipients, z.reads_at_text, z.held) for z in preview.zones}
    if outside == WindowOutside.WAIT:
        assert readings == {
            "America/Los_Angeles": (1, "Thu 2026-12-03 09:00", True),
            "Asia/Tokyo": (3, "Fri 2026-12-04 09:00", True),
            "Europe/London": (2, "Thu 2026-12-03 12:00", False),
        }
    else:
        assert readings["Asia/Tokyo"] == (3, "", True)
    assert preview.held_by_window == 4
    client.force_login(UserFactory(organization=number.organization))
    page = client.get(reverse("admin:campaigns_campaign_dry_run", args=[campaign.pk]))
    html = page.content.decode()
    assert "4 recipients outside it at the fire time" in html
    expected = "Fri 2026-12-04 09:00 (held" if outside == WindowOutside.WAIT else "outside_window"
    assert expected in html
