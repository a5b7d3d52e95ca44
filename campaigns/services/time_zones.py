"""Local times to UTC instants: the zones the editor knows, the instant a wall-clock time
names (refusing a spring-forward gap, taking the first of a fall-back overlap), the wall time
naming an instant, and the clock notation the editor's messages use.

Its own module because it is pure time arithmetic: no models, no database, used by the
editing rules, the gates and the REST API's start alike.
"""

import datetime as dt
import zoneinfo
from functools import cache
from typing import NamedTuple

from django.core.exceptions import ValidationError

from setter.instants import in_supported_range


class ResolvedInstant(NamedTuple):
    utc: dt.datetime
    ambiguous: bool
    note: str = ""


@cache
def time_zone_names() -> tuple[str, ...]:
    """Every IANA zone this system knows, sorted: what the editor offers and accepts."""
    return tuple(sorted(zoneinfo.available_timezones()))


def resolve_local_time(local_date: dt.date, local_time: dt.time, time_zone: str) -> ResolvedInstant:
    """The UTC instant of a wall-clock time in a zone, by the zone's rules on that date.

    A time inside a spring-forward gap never happens: refuse it rather than guess. A time
    inside a fall-back overlap happens twice: take the first, and say so.
    """
    if time_zone not in time_zone_names():
        raise ValidationError(
            f"Unknown time zone {time_zone!r}: pick an IANA zone such as Europe/London.",
            code="unknown_time_zone",
        )
    zone = zoneinfo.ZoneInfo(time_zone)
    wall = dt.datetime.combine(local_date, local_time.replace(tzinfo=None))
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    if not in_supported_range(first):
        raise ValidationError(
            f"{wall:%Y-%m-%d} is outside the years 1970–9000", code="date_out_of_range"
        )
    utc = first.astimezone(dt.UTC)
    if utc.astimezone(zone).replace(tzinfo=None) != wall:
        # Aware datetimes with a ZoneInfo always have an offset; the stub allows None.
        start, end = _gap_around(wall, zone, first.utcoffset(), second.utcoffset())  # type: ignore[arg-type]
        raise ValidationError(
            f"{_clock(wall)} on {wall:%Y-%m-%d} does not exist in {time_zone}: "
            f"clocks jump from {_clock(start)} to {_clock(end)}",
            code="nonexistent_time",
        )
    if first.utcoffset() == second.utcoffset():
        return ResolvedInstant(utc, False)
    note = (
        f"{_clock(wall)} on {wall:%Y-%m-%d} happens twice in {time_zone}; using the first "
        f"occurrence ({first.tzname()}, {_utc_offset(first.utcoffset())})"  # type: ignore[arg-type]
    )
    return ResolvedInstant(utc, True, note)


def wall_time_in(instant: dt.datetime, time_zone: str) -> tuple[dt.date, dt.time, str]:
    """(local date, local time, zone) naming an instant for a send given only the instant:
    its wall time in `time_zone` (the zone the organization's sends are in), or in UTC when
    that wall time happens twice there, since the editor would read it as the first one."""
    local = instant.astimezone(zoneinfo.ZoneInfo(time_zone)).replace(tzinfo=None)
    if resolve_local_time(local.date(), local.time(), time_zone).ambiguous:
        local, time_zone = instant.astimezone(dt.UTC).replace(tzinfo=None), "UTC"
    return local.date(), local.time(), time_zone


def _gap_around(wall, zone, before: dt.timedelta, after: dt.timedelta):
    """The local times where clocks jump (gap start, gap end) for a wall time in the gap.

    The transition instant lies in (wall − after, wall − before] in UTC; halve that
    second-resolution interval until it closes on the first instant with the new offset.
    """
    low = int((wall - after).replace(tzinfo=dt.UTC).timestamp())
    high = int((wall - before).replace(tzinfo=dt.UTC).timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if dt.datetime.fromtimestamp(middle, zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    transition = dt.datetime.fromtimestamp(high, dt.UTC).replace(tzinfo=None)
    return transition + before, transition + after


def _clock(moment: dt.datetime | dt.time) -> str:
    return f"{moment:%H:%M:%S}" if moment.second else f"{moment:%H:%M}"


def _utc_offset(offset: dt.timedelta) -> str:
    sign = "+" if offset >= dt.timedelta(0) else "\u2212"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"
