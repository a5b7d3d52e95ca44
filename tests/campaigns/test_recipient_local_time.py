"""A send at each recipient's local time (issue 16.1): "10:00 on 15 March in every
recipient's own zone" fires in waves, one per distinct UTC instant, each materialized just
before its own instant with the rules read then.

Every expected instant here is computed straight from zoneinfo, not by the code under test.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db.models.expressions import RawSQL

from audiences.models import Lead
from audiences.time_zones import in_zones, lead_time_zone_sql, lead_zone, zone_key
from campaigns import dispatcher, local_time, materializer, sends, services, waves
from campaigns.analytics import send_waves
from campaigns.models import Campaign, Send, SendRecipient, SendWave
from setter.send_windows import WindowOutside
from tests.factories import (
    AudienceFactory,
    CampaignFactory,
    LeadFactory,
    LocalTimeSendFactory,
    OptOutFactory,
    UserFactory,
)

UTC = dt.UTC
# 15 March 2027: New York has been on summer time (UTC−4) since the 14th, London is still on
# winter time (UTC+0) until the 28th: a campaign week with a DST change in one zone.
DAY = dt.date(2027, 3, 15)
TEN = dt.time(10, 0)
DAY_START = dt.datetime.combine(DAY, dt.time(0), tzinfo=UTC)
PHONES = {
    "+447911123456": "Europe/London",  # a UK mobile: four zones, all on London's clock
    "+12125550123": "America/New_York",
    "+13055550124": "America/New_York",
    "+14155550123": "America/Los_Angeles",
    "+919812345678": "Asia/Calcutta",  # libphonenumber's name for Asia/Kolkata
    "+5511987654321": "America/Sao_Paulo",
    "+61412345678": "Australia/Sydney",  # an Australian mobile: eight zones, Sydney the main
}


def ten_in(zone: str, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, TEN, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def local_send(phones, *, time_zone="Europe/London", explicit=None, **fields):
    """A scheduled campaign with one audience (a lead per phone) and a pending local-time send
    at 10:00 on DAY."""
    campaign = CampaignFactory(status=Campaign.Status.SCHEDULED)
    audience = AudienceFactory(organization=campaign.organization)
    campaign.audiences.add(audience)
    for phone in phones:
        LeadFactory(
            audience=audience,
            phone_e164=phone,
            time_zone=(explicit or {}).get(phone, ""),
            first_name="Ann",
        )
    send = LocalTimeSendFactory(campaign=campaign, time_zone=time_zone, **fields)
    first = local_time.first_wave_at(send)
    Send.objects.filter(pk=send.pk).update(scheduled_for=first)
    return Send.objects.select_related("campaign").get(pk=send.pk)


@pytest.mark.parametrize(
    ("zone", "day", "wall", "expected", "moved"),
    [
        ("America/New_York", dt.date(2027, 3, 15), dt.time(10), (2027, 3, 15, 14, 0), False),
        ("America/New_York", dt.date(2027, 3, 12), dt.time(10), (2027, 3, 12, 15, 0), False),
        # 02:30 does not exist on 14 March 2027 in New York: clocks jump 02:00 → 03:00 EDT.
        ("America/New_York", dt.date(2027, 3, 14), dt.time(2, 30), (2027, 3, 14, 7, 0), True),
        # Lord Howe's clocks jump by half an hour: 02:00 → 02:30 on 3 October 2027.
        ("Australia/Lord_Howe", dt.date(2027, 10, 3), dt.time(2, 10), (2027, 10, 2, 15, 30), True),
        # 01:30 happens twice on 7 November 2027 in New York: the first (EDT).
        ("America/New_York", dt.date(2027, 11, 7), dt.time(1, 30), (2027, 11, 7, 5, 30), False),
        ("Asia/Kathmandu", dt.date(2027, 3, 15), dt.time(10), (2027, 3, 15, 4, 15), False),
    ],
)
def test_a_zone_reads_the_local_time_at_its_instant_and_a_gap_moves_to_its_end(
    zone, day, wall, expected, moved
):
    assert local_time.zone_instant(day, wall, zone) == (dt.datetime(*expected, tzinfo=UTC), moved)


@pytest.mark.django_db
@pytest.mark.parametrize("fallback", ["Europe/London", "Australia/Perth", "Europe/Moscow", "UTC"])
def test_the_sql_zone_of_a_lead_is_the_python_one(fallback):
    phones = [*PHONES, "+79161234567", "+18005550100", "+4915112345678", "not-a-phone", ""]
    audience = AudienceFactory()
    for n, phone in enumerate(phones):
        LeadFactory(audience=audience, phone_e164=phone)
        LeadFactory(audience=audience, phone_e164=phone, time_zone=["Asia/Tokyo", "UTC"][n % 2])
    table = '"audiences_lead"'
    sql_zones = dict(
        Lead.objects.filter(audience=audience)
        .annotate(zone=RawSQL(*lead_time_zone_sql(table, fallback)))
        .values_list("pk", "zone")
    )
    python_zones = {lead.pk: lead_zone(lead, fallback) for lead in audience.leads.all()}
    assert sql_zones == python_zones
    # A wave's filter (the indexed one) picks exactly the leads of its zones.
    leads = Lead.objects.filter(audience=audience).alias(zone_key=zone_key())
    for zone in {*python_zones.values(), "Europe/Paris"}:
        for zones in ((zone,), (zone, fallback)):
            picked = set(leads.filter(in_zones(zones, fallback)).values_list("pk", flat=True))
            assert picked == {pk for pk, z in python_zones.items() if z in zones}, zones
    by_phone = {
        lead.phone_e164: python_zones[lead.pk] for lead in audience.leads.filter(time_zone="")
    }
    assert by_phone["+61412345678"] == (
        "Australia/Perth" if fallback == "Australia/Perth" else "Australia/Sydney"
    )
    assert by_phone["+79161234567"] == (
        "Europe/Moscow" if fallback == "Europe/Moscow" else "Asia/Irkutsk"
    )
    assert by_phone["not-a-phone"] == by_phone[""] == fallback


@pytest.mark.django_db
def test_the_send_fires_in_one_wave_per_distinct_instant_in_time_order():
    explicit = {"+447911123456": "Asia/Tokyo"}  # the lead's own zone beats its phone's
    send = local_send([*PHONES, "+27821234567"], explicit=explicit)

    planned = local_time.plan(send, materializer.Eligible.of_send(send))

    expected: dict[dt.datetime, set[str]] = {}
    zones = {**PHONES, "+447911123456": "Asia/Tokyo", "+27821234567": "Africa/Johannesburg"}
    for zone in zones.values():
        expected.setdefault(ten_in(zone), set()).add(zone)
    assert [(w.at, {s.zone for s in w.zones}) for w in planned] == sorted(expected.items())
    assert [w.recipients for w in planned] == [1, 1, 1, 1, 1, 2, 1]  # New York's two together
    assert send.scheduled_for == planned[0].at == ten_in("Australia/Sydney")
    # New York already on summer time that week: 14:00 UTC, not 15:00.
    assert ten_in("America/New_York") == dt.datetime(2027, 3, 15, 14, tzinfo=UTC)
    assert all(zone_local.time() == TEN for w in planned for _, zone_local in w.local_times())


@pytest.mark.django_db
def test_scheduling_the_campaign_moves_the_send_to_its_first_wave(number, marketing_template):
    campaign = CampaignFactory(
        organization=number.organization, whatsapp_number=number, product_policy_confirmed=True
    )
    audience = AudienceFactory(organization=campaign.organization)
    campaign.audiences.add(audience)
    for phone in ("+12125550123", "+14155550123"):
        LeadFactory(audience=audience, phone_e164=phone)
    send = LocalTimeSendFactory(
        campaign=campaign,
        template=marketing_template,
        parameter_mapping=["first_name", "first_name"],
    )

    services.transition_campaign(campaign, "schedule")

    send.refresh_from_db()
    assert send.scheduled_for == ten_in("America/New_York")


def _wave(send, number) -> SendWave:
    return SendWave.objects.get(send=send, kind=SendWave.Kind.LOCAL, number=number)


@pytest.mark.django_db
def test_each_wave_materializes_before_its_instant_with_the_rules_read_then():
    send = local_send(["+12125550123", "+13055550124", "+14155550123", "+919812345678"])
    india, new_york, los_angeles = (
        ten_in("Asia/Calcutta"),
        ten_in("America/New_York"),
        ten_in("America/Los_Angeles"),
    )
    assert send.scheduled_for == india

    result = materializer.materialize_send(send.pk, now=india - dt.timedelta(seconds=60))

    assert result.recipient_count == 1
    fixed = list(send.waves.order_by("number").values_list("number", "scheduled_for", "status"))
    assert fixed == [
        (1, india, SendWave.Status.MATERIALIZED),
        (2, new_york, SendWave.Status.PENDING),
        (3, los_angeles, SendWave.Status.PENDING),
    ]
    (row,) = SendRecipient.objects.filter(send=send)
    assert (row.phone_e164, row.wave, row.next_attempt_at) == ("+919812345678", 1, india)

    assert sends.start_due_sends(now=india) == [send.pk]
    assert waves.start_due_local_waves(now=india) == [send.pk]
    SendRecipient.objects.filter(send=send).update(status=SendRecipient.Status.SENT)
    # Between waves the send stays sending and its campaign running.
    assert sends.settle_send(send.pk, now=india + dt.timedelta(minutes=5)) == Send.Status.SENDING
    assert Campaign.objects.get(pk=send.campaign_id).status == Campaign.Status.RUNNING

    # Before New York's wave: one of its phones opts out, a new lead in its zone joins.
    OptOutFactory(organization=send.campaign.organization, phone_e164="+13055550124")
    LeadFactory(audience=send.campaign.audiences.get(), phone_e164="+12125550199")
    waves.materialize_due_waves(now=new_york - dt.timedelta(seconds=61))
    assert _wave(send, 2).status == SendWave.Status.PENDING
    waves.materialize_due_waves(now=new_york - dt.timedelta(seconds=59))

    assert _wave(send, 2).recipients == 2
    wave_two = SendRecipient.objects.filter(send=send, wave=2)
    assert set(wave_two.values_list("phone_e164", "next_attempt_at")) == {
        ("+12125550123", new_york),
        ("+12125550199", new_york),
    }
    assert Send.objects.get(pk=send.pk).recipient_count == 3
    assert waves.start_due_local_waves(now=new_york - dt.timedelta(seconds=59)) == []
    assert waves.start_due_local_waves(now=new_york) == [send.pk]
    wave_two.update(status=SendRecipient.Status.SENT)

    # The system was down for two hours across Los Angeles' 10:00: that wave is missed, and
    # its recipient is written skipped, with the reason.
    waves.materialize_due_waves(now=los_angeles + dt.timedelta(hours=2))
    assert _wave(send, 3).status == SendWave.Status.MISSED
    assert list(
        SendRecipient.objects.filter(send=send, wave=3).values_list(
            "phone_e164", "status", "skip_reason"
        )
    ) == [("+14155550123", SendRecipient.Status.SKIPPED, "local_time_passed")]
    assert sends.settle_send(send.pk, now=los_angeles + dt.timedelta(hours=2)) == (
        Send.Status.COMPLETED
    )


@pytest.mark.django_db
def test_a_local_time_that_does_not_exist_moves_its_recipients_and_says_how_many():
    day = dt.date(2027, 3, 14)  # New York springs forward at 02:00
    campaign = CampaignFactory(status=Campaign.Status.SCHEDULED)
    audience = AudienceFactory(organization=campaign.organization)
    campaign.audiences.add(audience)
    for phone in ("+12125550123", "+13055550124", "+447911123456"):
        LeadFactory(audience=audience, phone_e164=phone)
    send = LocalTimeSendFactory(campaign=campaign, local_date=day, local_time=dt.time(2, 30))
    materializer.materialize_send(send.pk, now=dt.datetime(2027, 3, 14, 2, 29, tzinfo=UTC))

    wave = _wave(send, 2)
    assert wave.scheduled_for == dt.datetime(2027, 3, 14, 7, 0, tzinfo=UTC)  # 03:00 EDT
    assert wave.shifted_zones == ["America/New_York"]
    waves.materialize_due_waves(now=wave.scheduled_for - dt.timedelta(seconds=30))
    wave.refresh_from_db()
    assert (wave.recipients, wave.shifted) == (2, 2)
    assert _wave(send, 1).shifted == 0


@pytest.mark.django_db
def test_cancelling_between_waves_cancels_the_waves_to_come():
    send = local_send(["+12125550123", "+919812345678"])
    materializer.materialize_send(send.pk, now=send.scheduled_for - dt.timedelta(seconds=60))
    sends.start_due_sends(now=send.scheduled_for)

    services.transition_campaign(send.campaign, "cancel")

    assert set(send.waves.values_list("status", flat=True)) == {SendWave.Status.CANCELLED}
    assert sends.settle_send(send.pk) == Send.Status.CANCELLED


@pytest.mark.django_db
def test_the_dry_run_shows_each_wave_and_the_local_time_its_recipients_read():
    send = local_send(list(PHONES))
    preview = materializer.preview_send(send)

    assert preview.recipient_count == len(PHONES)
    assert [w.at for w in preview.waves] == sorted({ten_in(z) for z in PHONES.values()})
    assert sum(w.recipients for w in preview.waves) == len(PHONES)
    for wave in preview.waves:
        assert {local.strftime("%Y-%m-%d %H:%M") for _, local in wave.local_times()} == {
            "2027-03-15 10:00"
        }


@pytest.mark.django_db
def test_the_dry_run_page_lists_the_waves_in_their_zones_own_time(client):
    send = local_send(["+12125550123", "+919812345678"])
    client.force_login(UserFactory(organization=send.campaign.organization))

    page = client.get(f"/admin/campaigns/campaign/{send.campaign_id}/dry-run/").content.decode()

    assert 'class="dry-run-waves"' in page
    assert "Asia/Calcutta Mon 2027-03-15 10:00" in page
    assert "America/New_York Mon 2027-03-15 10:00" in page
    assert page.index("Asia/Calcutta Mon") < page.index("America/New_York Mon")


@pytest.mark.django_db
def test_the_progress_shows_each_wave_with_its_zones():
    send = local_send(["+12125550123", "+919812345678"])
    materializer.materialize_send(send.pk, now=send.scheduled_for - dt.timedelta(seconds=60))

    notes = [w.note for w in send_waves([send])[send.pk]]

    assert notes == [
        "Wave 1 at 2027-03-15 04:30 UTC: 1 recipients, Asia/Calcutta (queued 1)",
        "Wave 2 scheduled for 2027-03-15 14:00 UTC (America/New_York)",
    ]


def _rows(send, **filters) -> set[tuple[str, int, str, str]]:
    """(phone, wave, status, skip reason) of the send's recipient rows."""
    rows = SendRecipient.objects.filter(send=send, **filters)
    return set(rows.values_list("phone_e164", "wave", "status", "skip_reason"))


QUEUED, SKIPPED = SendRecipient.Status.QUEUED, SendRecipient.Status.SKIPPED


@pytest.mark.django_db
def test_a_wave_reached_too_late_writes_its_recipients_skipped_and_reads_missed():
    send = local_send(["+919812345678", "+12125550123", "+13055550124"])
    materializer.materialize_send(send.pk, now=send.scheduled_for - dt.timedelta(seconds=60))
    sends.start_due_sends(now=send.scheduled_for)
    waves.start_due_local_waves(now=send.scheduled_for)

    # The system was down from before New York's 10:00 until two hours after it.
    waves.materialize_due_waves(now=ten_in("America/New_York") + dt.timedelta(hours=2))

    wave = _wave(send, 2)
    assert (wave.status, wave.recipients) == (SendWave.Status.MISSED, 2)
    assert _rows(send, wave=2) == {
        ("+12125550123", 2, SKIPPED, "local_time_passed"),
        ("+13055550124", 2, SKIPPED, "local_time_passed"),
    }
    assert set(SendRecipient.objects.filter(send=send, wave=2).values_list("error_title")) == {
        ("The recipient's local send time had passed",)
    }
    assert Send.objects.get(pk=send.pk).recipient_count == 3
    notes = [w.note for w in send_waves([send])[send.pk]]
    assert notes[1] == (
        "Wave 2 missed: the system reached 2027-03-15 14:00 UTC too late, 2 recipients skipped "
        "(America/New_York)"
    )
    assert waves.start_due_local_waves(now=ten_in("America/New_York") + dt.timedelta(hours=2)) == []


@pytest.mark.django_db
def test_a_lead_joining_in_a_zone_with_no_wave_ends_skipped_and_one_with_a_later_wave_is_sent():
    send = local_send(["+919812345678", "+12125550123", "+14155550123"])
    materializer.materialize_send(send.pk, now=send.scheduled_for - dt.timedelta(seconds=60))
    sends.start_due_sends(now=send.scheduled_for)
    audience = send.campaign.audiences.get()
    # After the waves were fixed: a lead in Tokyo, which has no wave; one in New York, which
    # has; and a phone whose first lead is in Tokyo, its second in Los Angeles (the last wave).
    LeadFactory(audience=audience, phone_e164="+819012345678")
    LeadFactory(audience=audience, phone_e164="+12125550199")
    LeadFactory(audience=audience, phone_e164="+447700900123", time_zone="Asia/Tokyo")
    LeadFactory(audience=audience, phone_e164="+447700900123", time_zone="America/Los_Angeles")

    waves.materialize_due_waves(now=ten_in("America/New_York") - dt.timedelta(seconds=59))

    # A wave is still to come: nobody is written off yet.
    assert _rows(send, wave=2) == {
        ("+12125550123", 2, QUEUED, ""),
        ("+12125550199", 2, QUEUED, ""),
    }
    waves.materialize_due_waves(now=ten_in("America/Los_Angeles") - dt.timedelta(seconds=59))

    assert _rows(send, wave=3) == {
        ("+14155550123", 3, QUEUED, ""),
        ("+447700900123", 3, QUEUED, ""),
        ("+819012345678", 3, SKIPPED, "no_local_wave"),
    }
    assert _wave(send, 3).recipients == 3
    (skipped,) = SendRecipient.objects.filter(send=send, skip_reason="no_local_wave")
    assert skipped.error_title == "The send had no wave for the recipient's zone"
    # Written once: materializing again writes nothing more.
    waves.materialize_due_waves(now=ten_in("America/Los_Angeles") - dt.timedelta(seconds=30))
    assert SendRecipient.objects.filter(send=send).count() == 6


@pytest.mark.django_db
def test_the_sends_recipient_count_and_materialization_time_are_its_waves_sums():
    send = local_send(["+919812345678", "+12125550123", "+13055550124", "+14155550123"])
    materializer.materialize_send(send.pk, now=send.scheduled_for - dt.timedelta(seconds=60))
    sends.start_due_sends(now=send.scheduled_for)
    LeadFactory(audience=send.campaign.audiences.get(), phone_e164="+819012345678")
    waves.materialize_due_waves(now=ten_in("America/New_York") - dt.timedelta(seconds=59))
    waves.materialize_due_waves(now=ten_in("America/Los_Angeles") + dt.timedelta(hours=2))

    send.refresh_from_db()
    fixed = list(send.waves.order_by("number"))
    assert [w.status for w in fixed] == [
        SendWave.Status.MATERIALIZED,
        SendWave.Status.MATERIALIZED,
        SendWave.Status.MISSED,
    ]
    assert [w.recipients for w in fixed] == [1, 2, 2]  # Los Angeles' missed, Tokyo's lead
    assert send.recipient_count == sum(w.recipients for w in fixed)
    assert send.recipient_count == SendRecipient.objects.filter(send=send).count()
    assert send.materialization_seconds == pytest.approx(
        sum(w.materialization_seconds for w in fixed)
    )
    assert all(w.materialization_seconds > 0 for w in fixed)


@pytest.mark.django_db
@pytest.mark.parametrize(("late", "missed"), [(600, False), (601, True)])
def test_a_send_and_a_wave_are_too_late_by_the_same_rule(settings, late, missed):
    settings.SEND_MISSED_AFTER_SECONDS = 600
    assert services.too_late(DAY_START, DAY_START + dt.timedelta(seconds=late)) == missed
    reached_late = local_send(["+919812345678"])
    result = materializer.materialize_send(
        reached_late.pk, now=reached_late.scheduled_for + dt.timedelta(seconds=late)
    )
    assert (result.status == Send.Status.MISSED) == missed

    send = local_send(["+919812345678", "+12125550123"])
    materializer.materialize_send(send.pk, now=send.scheduled_for - dt.timedelta(seconds=60))
    waves.materialize_due_waves(now=ten_in("America/New_York") + dt.timedelta(seconds=late))

    assert (_wave(send, 2).status == SendWave.Status.MISSED) == missed
    assert _rows(send, wave=2) == {
        ("+12125550123", 2, SKIPPED, "local_time_passed")
        if missed
        else ("+12125550123", 2, QUEUED, "")
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_engine")
@pytest.mark.parametrize("outside", [WindowOutside.WAIT, WindowOutside.SKIP])
def test_a_send_window_holds_back_or_skips_a_wave_outside_it(
    sandbox, number, marketing_template, outside
):
    """09:00 in each zone, a window from 09:30: India's wave is outside it on its own clock."""
    campaign = CampaignFactory(
        organization=number.organization,
        whatsapp_number=number,
        status=Campaign.Status.SCHEDULED,
        window_start=dt.time(9, 30),
        window_end=dt.time(20),
        window_outside=outside,
    )
    audience = AudienceFactory(organization=campaign.organization)
    campaign.audiences.add(audience)
    LeadFactory(
        audience=audience, phone_e164="+919812345678", first_name="Ann", variables={"coupon": "C"}
    )
    send = LocalTimeSendFactory(
        campaign=campaign,
        template=marketing_template,
        parameter_mapping=["first_name", "variables.coupon"],
        local_time=dt.time(9),
    )
    india_nine = dt.datetime(2027, 3, 15, 3, 30, tzinfo=UTC)
    local_time.place_first_waves(campaign)
    with time_machine.travel(india_nine - dt.timedelta(seconds=60), tick=False) as clock:
        materializer.materialize_send(send.pk)
        clock.move_to(india_nine)
        assert sends.start_due_sends() == [send.pk]
        dispatcher.dispatch_send(send.pk)

    row = SendRecipient.objects.get(send=send)
    assert sandbox.requests()["count"] == 0
    if outside == WindowOutside.SKIP:
        assert (row.status, row.skip_reason) == (SendRecipient.Status.SKIPPED, "outside_window")
    else:  # queued for 09:30 in India
        opening = dt.datetime(2027, 3, 15, 4, 0, tzinfo=UTC)
        assert (row.status, row.next_attempt_at) == (SendRecipient.Status.QUEUED, opening)
