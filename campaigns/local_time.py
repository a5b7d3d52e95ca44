"""Sends at each recipient's local time (issue 16.1): "10:00 on 4 December in every
recipient's own zone" instead of one instant.

Each recipient's zone is its lead's (audiences.time_zones: the lead's time_zone, else its
phone's, the send's own zone deciding for a phone whose area spans several). The zones whose
10:00 is the same UTC instant form a wave; the send fires wave after wave, up to ~26 hours
from the first (UTC+14) to the last (UTC−12).

* The send's scheduled_for is its first wave: placed when the campaign is scheduled, from
  the audience then (before any audience filter, which can only narrow it). The
  audience-filter deadline is 5 minutes before it, the gates read it.
* When the first wave is due (~60 s before), the waves are fixed from the send's eligible
  set at that moment (SendWave rows, kind local); each then materializes ~60 s before its
  own instant with the filters, opt-outs and the frequency cap evaluated at that instant,
  and starts at it (campaigns.waves). A lead that joins later is messaged in the wave of
  its zone's instant if the send has one; else, once no wave is left to come, it is written
  skipped (no_local_wave).
* A local time that does not exist in a zone that day (a spring-forward gap) moves to the
  next valid minute there; the wave records those zones and how many recipients it moved.
* A wave whose instant passed more than SEND_MISSED_AFTER_SECONDS before it could be
  materialized (the system was down) is missed, like a send (campaigns.services.too_late),
  and says so: its recipients are written skipped (local_time_passed).
"""

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.db import transaction

from .eligibility import Eligible
from .models import Campaign, Send

# No zone's clocks jump by more than a day.
MAX_GAP_MINUTES = 24 * 60


def zone_instant(local_date: dt.date, local_time: dt.time, zone: str) -> tuple[dt.datetime, bool]:
    """(the UTC instant of this wall time in `zone`, whether it moved): a time inside a
    spring-forward gap becomes the gap's end, the next minute that exists; a time that
    happens twice is the first, as the editor reads it."""
    tz = ZoneInfo(zone)
    wall = dt.datetime.combine(local_date, local_time.replace(tzinfo=None))
    candidate = wall
    for _ in range(MAX_GAP_MINUTES):
        utc = candidate.replace(tzinfo=tz).astimezone(dt.UTC)
        if utc.astimezone(tz).replace(tzinfo=None) == candidate:
            return utc, candidate != wall
        candidate = candidate.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    raise AssertionError(f"{wall} has no valid minute within a day in {zone}")


@dataclass(frozen=True)
class ZoneShare:
    zone: str
    recipients: int  # messaged
    held_by_cap: int


@dataclass(frozen=True)
class PlannedWave:
    """One instant of a local-time send and the zones of its recipients that read it then."""

    at: dt.datetime
    zones: tuple[ZoneShare, ...]
    shifted_zones: tuple[str, ...] = field(default=())

    @property
    def recipients(self) -> int:
        return sum(share.recipients for share in self.zones)

    @property
    def held_by_cap(self) -> int:
        return sum(share.held_by_cap for share in self.zones)

    @property
    def shifted(self) -> int:
        return sum(s.recipients for s in self.zones if s.zone in self.shifted_zones)

    def messaged_by_zone(self) -> dict[str, int]:
        return {share.zone: share.recipients for share in self.zones if share.recipients}

    def local_times(self) -> list[tuple[str, dt.datetime]]:
        """(zone, the wall time its recipients read the message)."""
        return [(s.zone, self.at.astimezone(ZoneInfo(s.zone))) for s in self.zones]

    @property
    def reads_at_text(self) -> str:
        """Each zone's wall time, in the zone's own time (a template's date filter would show
        the viewer's); a zone where the local time does not exist that day says so."""
        return "; ".join(
            f"{zone} {local:%a %Y-%m-%d %H:%M}"
            + (
                " (the next valid minute: the local time does not exist)"
                if zone in self.shifted_zones
                else ""
            )
            for zone, local in self.local_times()
        )


def plan(send: Send, eligible: Eligible) -> list[PlannedWave]:
    """The waves of a local-time send over `eligible`'s recipients, in time order: one
    GROUP BY of their zones, then each zone's instant."""
    if eligible.reason:
        return []
    counts = eligible.with_zones(send.time_zone).zone_counts()
    by_instant: dict[dt.datetime, list[ZoneShare]] = {}
    shifted: dict[dt.datetime, list[str]] = {}
    for zone in sorted(counts):
        at, moved = zone_instant(send.local_date, send.local_time, zone)
        messaged, held = counts[zone]
        by_instant.setdefault(at, []).append(ZoneShare(zone, messaged, held))
        if moved:
            shifted.setdefault(at, []).append(zone)
    return [
        PlannedWave(at, tuple(shares), tuple(shifted.get(at, ())))
        for at, shares in sorted(by_instant.items())
    ]


def one_wave(send: Send, eligible: Eligible) -> PlannedWave:
    """An ordinary send as a single wave at its instant, its recipients by zone: what the
    dry run reads a send window with."""
    counts = eligible.with_zones(send.time_zone).zone_counts()
    shares = tuple(ZoneShare(zone, n, held) for zone, (n, held) in sorted(counts.items()))
    return PlannedWave(send.scheduled_for, shares)


def first_wave_at(send: Send) -> dt.datetime | None:
    """The instant of the send's first wave over its audience before any filter (the
    widest set it can reach), or None when that audience is empty."""
    waves = plan(send, Eligible(send.campaign, send.category))
    return waves[0].at if waves else None


def place_first_waves(campaign: Campaign) -> None:
    """Each unfired local-time send of the campaign fires at its first wave: called as the
    campaign is scheduled, so the gates, the order of sends and the filter deadline read it."""
    with transaction.atomic():
        for send in campaign.sends.filter(
            recipient_local_time=True, status__in=Send.UNFIRED_STATUSES
        ).select_related("campaign__organization"):
            at = first_wave_at(send)
            if at is not None and at != send.scheduled_for:
                send.scheduled_for = at
                send.save(update_fields=["scheduled_for"])
