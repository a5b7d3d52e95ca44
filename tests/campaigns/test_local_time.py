"""A send's local time becomes one UTC instant by its zone's rules on that very date."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from campaigns.services import resolve_local_time

UTC = dt.UTC


def utc(*args):
    return dt.datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "local", "expected"),
    [
        # America/New_York: EST (UTC−5) in winter, EDT (UTC−4) in summer.
        ("America/New_York", (2026, 1, 15, 9, 0), utc(2026, 1, 15, 14, 0)),
        ("America/New_York", (2026, 7, 4, 9, 0), utc(2026, 7, 4, 13, 0)),
        ("America/New_York", (2026, 3, 8, 3, 0), utc(2026, 3, 8, 7, 0)),  # first EDT minute
        ("America/New_York", (2026, 3, 8, 1, 59), utc(2026, 3, 8, 6, 59)),  # last EST minute
        ("America/New_York", (2026, 11, 1, 2, 0), utc(2026, 11, 1, 7, 0)),  # after the overlap
        # Europe/London: GMT (UTC+0) in winter, BST (UTC+1) in summer.
        ("Europe/London", (2026, 1, 15, 10, 0), utc(2026, 1, 15, 10, 0)),
        ("Europe/London", (2026, 6, 1, 10, 0), utc(2026, 6, 1, 9, 0)),
        ("Europe/London", (2026, 3, 29, 2, 0), utc(2026, 3, 29, 1, 0)),  # first BST minute
        # Asia/Kolkata: UTC+05:30 all year, no daylight saving.
        ("Asia/Kolkata", (2026, 1, 15, 10, 0), utc(2026, 1, 15, 4, 30)),
        ("Asia/Kolkata", (2026, 7, 15, 10, 0), utc(2026, 7, 15, 4, 30)),
        ("Asia/Kolkata", (2026, 3, 8, 2, 30), utc(2026, 3, 7, 21, 0)),
        ("UTC", (2026, 3, 8, 2, 30), utc(2026, 3, 8, 2, 30)),
    ],
)
def test_ordinary_local_times_use_the_offset_in_force_that_day(zone, local, expected):
    moment = dt.datetime(*local)

    resolved = resolve_local_time(moment.date(), moment.time(), zone)

    assert resolved.utc == expected
    assert resolved.utc.utcoffset() == dt.timedelta(0)
    assert resolved.ambiguous is False
    assert resolved.note == ""


@pytest.mark.parametrize(
    ("zone", "local", "message"),
    [
        (
            "America/New_York",
            (2026, 3, 8, 2, 30),
            "02:30 on 2026-03-08 does not exist in America/New_York: "
            "clocks jump from 02:00 to 03:00",
        ),
        (
            "America/New_York",
            (2026, 3, 8, 2, 0),
            "02:00 on 2026-03-08 does not exist in America/New_York: "
            "clocks jump from 02:00 to 03:00",
        ),
        (
            "Europe/London",
            (2026, 3, 29, 1, 30),
            "01:30 on 2026-03-29 does not exist in Europe/London: clocks jump from 01:00 to 02:00",
        ),
        (
            # Lord Howe Island moves its clocks by half an hour.
            "Australia/Lord_Howe",
            (2026, 10, 4, 2, 15),
            "02:15 on 2026-10-04 does not exist in Australia/Lord_Howe: "
            "clocks jump from 02:00 to 02:30",
        ),
    ],
)
def test_a_time_in_the_spring_forward_gap_is_refused_naming_the_gap(zone, local, message):
    moment = dt.datetime(*local)

    with pytest.raises(ValidationError) as raised:
        resolve_local_time(moment.date(), moment.time(), zone)

    assert raised.value.messages == [message]
    assert raised.value.code == "nonexistent_time"


def test_a_time_in_the_fall_back_overlap_takes_its_first_occurrence_and_says_so():
    resolved = resolve_local_time(dt.date(2026, 11, 1), dt.time(1, 30), "America/New_York")

    assert resolved.utc == utc(2026, 11, 1, 5, 30)  # 01:30 EDT, not 01:30 EST (06:30 UTC)
    assert resolved.ambiguous is True
    assert resolved.note == (
        "01:30 on 2026-11-01 happens twice in America/New_York; "
        "using the first occurrence (EDT, UTC\u221204:00)"
    )


def test_london_overlap_resolves_to_british_summer_time():
    resolved = resolve_local_time(dt.date(2026, 10, 25), dt.time(1, 15), "Europe/London")

    assert resolved.utc == utc(2026, 10, 25, 0, 15)
    assert resolved.ambiguous is True
    assert "using the first occurrence (BST, UTC+01:00)" in resolved.note


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../etc/passwd", "EST5EDT "])
def test_an_unknown_zone_is_refused(zone):
    with pytest.raises(ValidationError) as raised:
        resolve_local_time(dt.date(2026, 1, 1), dt.time(9, 0), zone)

    assert raised.value.code == "unknown_time_zone"
    assert repr(zone) in raised.value.messages[0]
