"""Quiet hours (issue 16.2): a campaign's messages reach people only inside its send window,
in each recipient's own local time — e.g. 09:00–20:00, not on Sundays.

The window is checked where every message passes before it goes on the wire: the dispatcher's
claim (campaigns.dispatcher). A recipient outside it either waits for the window's next
opening in its zone (the row goes back to the queue with that instant as its next attempt,
and the send says so) or, when the campaign says "skip", is skipped with reason
outside_window. Retries pass through the claim too, so a message held back by rate limits or
backoff never goes out at 03:00 local time.

A recipient's zone is its lead's (audiences.time_zones: its own time_zone, else its phone's,
the send's own zone deciding between several). An opening at a local time that does not exist that day (a
spring-forward gap) is the same wall-clock time read with the offset before the change: an
hour later on the clock, the first minute the window is open that morning.
"""

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from setter.send_windows import ALL_DAYS, WEEKDAYS, WindowOutside


@dataclass(frozen=True)
class SendWindow:
    start: dt.time
    end: dt.time
    days: frozenset[int]  # 0 = Monday
    outside: str

    @classmethod
    def of(cls, campaign) -> "SendWindow | None":
        """The campaign's own window, else its organization's, or None (any hour)."""
        for owner in (campaign, campaign.organization):
            if owner.window_start is not None and owner.window_end is not None:
                return cls(
                    owner.window_start,
                    owner.window_end,
                    frozenset(owner.window_days or ALL_DAYS),
                    owner.window_outside,
                )
        return None

    def is_open(self, local: dt.datetime) -> bool:
        return local.weekday() in self.days and self.start <= local.time() < self.end

    def next_opening(self, now: dt.datetime, zone: str) -> dt.datetime | None:
        """None when the window is open now in `zone`; else the instant it next opens there."""
        tz = ZoneInfo(zone)
        local = now.astimezone(tz)
        if self.is_open(local):
            return None
        for ahead in range(8):
            day = local.date() + dt.timedelta(days=ahead)
            if day.weekday() not in self.days:
                continue
            opening = dt.datetime.combine(day, self.start, tzinfo=tz).astimezone(dt.UTC)
            if opening > now:
                return opening
        raise AssertionError("a window open on at least one weekday opens within a week")

    def waits(self, now: dt.datetime, zones: dict[int, str]) -> dict[int, dt.datetime]:
        """{row: the instant its window opens} for the rows ({row: zone}) outside it now."""
        openings: dict[str, dt.datetime | None] = {}  # per zone: a batch has a few
        closed = {}
        for key, zone in zones.items():
            if zone not in openings:
                openings[zone] = self.next_opening(now, zone)
            opening = openings[zone]
            if opening is not None:
                closed[key] = opening
        return closed

    def describe(self) -> str:
        days = ", ".join(WEEKDAYS[d] for d in sorted(self.days))
        return f"{self.start:%H:%M}–{self.end:%H:%M} recipient local time, on {days}"


@dataclass(frozen=True)
class ZoneReading:
    """The dry run's line for one zone of a send's recipients under a window."""

    zone: str
    recipients: int
    reads_at: dt.datetime | None  # local; None when skipped
    held: bool  # outside the window at the fire time

    @property
    def reads_at_text(self) -> str:
        """In the zone's own time (a template's date filter would show the viewer's)."""
        return f"{self.reads_at:%a %Y-%m-%d %H:%M}" if self.reads_at else ""


def zone_readings(
    window: "SendWindow", fire_at: dt.datetime, counts: dict[str, int]
) -> list[ZoneReading]:
    """Per recipient zone ({zone: recipients}): how many, and the local time they read the
    message — at the fire time, or at the window's next opening (held) — or None when the
    campaign skips them."""
    readings = []
    for zone, n in sorted(counts.items()):
        opening = window.next_opening(fire_at, zone)
        reads_at = opening or fire_at
        if opening is not None and window.outside == WindowOutside.SKIP:
            readings.append(ZoneReading(zone, n, None, True))
        else:
            readings.append(
                ZoneReading(zone, n, reads_at.astimezone(ZoneInfo(zone)), bool(opening))
            )
    return readings
