"""A lead's time zone: the one rule, in Python and in SQL (issue 16.1).

A send "at 10:00 in each recipient's zone" and a send window (quiet hours) read a lead's
clock the same way, from the columns its ingest stored:

1. the lead's own `time_zone` (the CSV's or API's time_zone column), when given;
2. else its phone's zone, when the phone's area has one (+1 415 …: America/Los_Angeles);
3. when the phone's area spans several zones (an Australian or Russian mobile, +1 800 …):
   the send's own zone if it is one of them — a send set to Australia/Perth reaches an
   Australian mobile at 10:00 in Perth — else the country's main zone (the zone of its
   example landline: Australia/Sydney, Asia/Irkutsk… see setter.phones.phone_zones);
4. the send's own zone when the phone says nothing.

The planner groups recipients into waves by the SQL form, the dispatcher reads rows with the
Python form, and each wave selects its leads with in_zones, which an index serves; tests hold
the three to the same answers.
"""

from django.db import connection
from django.db.models import BooleanField, Case, F, Q, When
from django.db.models.expressions import RawSQL


def lead_time_zone(time_zone: str, phone_zone: str, phone_zones: str, fallback: str) -> str:
    """The zone a lead reads a send in, `fallback` being the send's own zone."""
    if time_zone:
        return time_zone
    if phone_zones and fallback in phone_zones.split():
        return fallback
    return phone_zone or fallback


# The lead columns lead_zone reads.
ZONE_FIELDS = ("time_zone", "phone_zone", "phone_zones")


def lead_zone(lead, fallback: str) -> str:
    """lead_time_zone of a Lead."""
    return lead_time_zone(lead.time_zone, lead.phone_zone, lead.phone_zones, fallback)


def lead_time_zone_sql(alias: str, fallback: str) -> tuple[str, list]:
    """lead_time_zone over the lead columns of table alias `alias`, as SQL and parameters."""
    listed = f"(' ' || {alias}.phone_zones || ' ')"
    contains = (
        f"strpos({listed}, %s) > 0"
        if connection.vendor == "postgresql"
        else f"instr({listed}, %s) > 0"
    )
    return (
        f"CASE WHEN {alias}.time_zone <> '' THEN {alias}.time_zone "
        f"WHEN {alias}.phone_zones <> '' AND {contains} THEN %s "
        f"WHEN {alias}.phone_zone <> '' THEN {alias}.phone_zone ELSE %s END"
    ), [f" {fallback} ", fallback, fallback]


def zone_key() -> Case:
    """The lead's zone whatever the send: its own, else its phone's (main) zone. Indexed with
    the audience (Lead.Meta), so a wave of a local-time send finds its leads without reading
    the whole audience."""
    return Case(When(~Q(time_zone=""), then=F("time_zone")), default=F("phone_zone"))


def in_zones(zones: tuple[str, ...], fallback: str) -> Q:
    """Leads whose lead_time_zone (with `fallback`, the send's zone) is one of `zones`, as a
    filter on Lead: zone_key for all but the leads the fallback decides (a phone of several
    zones of which the fallback is one, or a phone that says nothing)."""
    listed = "(' ' || phone_zones || ' ')"
    contains = (
        f"strpos({listed}, %s) > 0"
        if connection.vendor == "postgresql"
        else f"instr({listed}, %s) > 0"
    )
    fallback_picks = (
        Q(time_zone="")
        & ~Q(phone_zones="")
        & Q(RawSQL(contains, [f" {fallback} "], output_field=BooleanField()))
    )
    matching = Q(zone_key__in=zones) & ~fallback_picks
    if fallback in zones:
        matching |= fallback_picks | (Q(time_zone="") & Q(phone_zone=""))
    return matching
