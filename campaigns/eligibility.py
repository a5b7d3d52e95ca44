"""Who a send reaches: the product's eligibility rule, written once (issue 14.1).

The materializer inserts this set, the messaging-limit gate counts it, the dry run previews
it, and the dispatcher re-checks its opt-out rule on the rows it claims; none of them
restates a part of it, so they cannot drift apart. The rule (DESIGN, "The flow" 4; seed 001):
members of the campaign's segments (audiences.segments.member_branches) whose phone ingested
ok — a UTILITY send may also reach US numbers (`ineligible_geo`), a MARKETING one never (Meta
answers 131049) — minus the organization's opt-outs (ALL stops every send, MARKETING only
MARKETING ones), the send's latest audience-filter event applied, its event filter applied
relative to the fire time, and one lead per phone (the lowest id), so a phone in two segments
of the campaign gets one message. A phone the organization's frequency cap holds (issue 16.3:
already N messages in the D days before the fire time) stays in the set, marked `held`: the
materializer writes it skipped with reason frequency_cap, so it is counted and shown, and
the gate and the dry run count it apart.

One row per phone is DISTINCT ON over the membership branches, not `IN (SELECT MIN(id) …
GROUP BY)` over a CTE scanned twice: planned without statistics (a fresh import, autovacuum
not run yet) that shape grew worse than quadratically, 287 s for 60k leads (issue 17.1);
DISTINCT ON is one sort whatever the planner believes. SQLite, the embedded default, has no
DISTINCT ON: there it is MIN(id) with bare columns, which SQLite documents to come from the
row holding the minimum.
"""

import datetime as dt
from dataclasses import dataclass, replace
from typing import NamedTuple

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import Combinable, RawSQL
from django.utils import timezone

from audiences.models import Lead, LeadEvent, OptOut
from audiences.segments import member_branches
from audiences.time_zones import in_zones, lead_time_zone_sql, zone_key
from messaging.models import Category

from .models import AudienceFilterEvent, Campaign, Send, SendRecipient

NO_FILTER_EVENT_REASON = (
    "No recipients: the send's audience filter is on, but no filter event arrived before the "
    "deadline."
)
COLUMNS = ("id", "phone_e164", "limited_reporting")


def reachable_statuses(category: str) -> list[str]:
    """Lead ingest statuses a send of `category` may reach."""
    if category == Category.MARKETING:
        return [Lead.IngestStatus.OK]
    return [Lead.IngestStatus.OK, Lead.IngestStatus.INELIGIBLE_GEO]


def stopping_scopes(category: str) -> list[str]:
    """Opt-out scopes that stop a send of `category`."""
    if category == Category.MARKETING:
        return [OptOut.Scope.ALL, OptOut.Scope.MARKETING]
    return [OptOut.Scope.ALL]


def opt_outs(organization_id: int, scopes: list[str]) -> QuerySet[OptOut]:
    """The organization's opt-outs of these scopes: opt-outs are per organization, never
    global."""
    return OptOut.objects.filter(organization_id=organization_id, scope__in=scopes)


def opted_out_phones(send: Send, phones: list[str]) -> set[str]:
    """Which of these phones the send may no longer message: the dispatcher's re-check of
    recipients claimed after a STOP that arrived since materialization."""
    stopping = opt_outs(send.campaign.organization_id, stopping_scopes(send.category))
    return set(stopping.filter(phone_e164__any=phones).values_list("phone_e164", flat=True))


@dataclass(frozen=True)
class FrequencyCap:
    """At most `messages` messages per phone in the `days` before `fire_at`, counting the
    organization's other sends of the capped categories (marketing; utility too if the
    organization says so)."""

    organization_id: int
    messages: int
    days: int
    categories: tuple[str, ...]
    fire_at: dt.datetime
    send_id: int | None

    @classmethod
    def of(cls, campaign: Campaign, category: str, fire_at: dt.datetime, send_id: int | None):
        """The cap a send of `category` is under, or None (no cap, or not a capped category)."""
        organization = campaign.organization
        if not organization.frequency_cap_messages:
            return None
        categories: tuple[str, ...] = (Category.MARKETING,)
        if organization.frequency_cap_utility:
            categories = (Category.MARKETING, Category.UTILITY)
        if category not in categories:
            return None
        return cls(
            organization.pk,
            organization.frequency_cap_messages,
            organization.frequency_cap_days,
            categories,
            fire_at,
            send_id,
        )

    def reached_sql(self, phones: list[str] | None = None) -> tuple[str, list]:
        """SQL of the phones the cap holds (one column, phone_e164), among `phones` if given.

        Set-based: one aggregate over the recipients of the organization's sends, which the
        (send, phone) unique index serves; the send being decided is not counted."""
        recipient = SendRecipient._meta.db_table
        send = Send._meta.db_table
        campaign = Campaign._meta.db_table
        statuses = ", ".join(["%s"] * len(SendRecipient.MESSAGED_STATUSES))
        categories = ", ".join(["%s"] * len(self.categories))
        params: list = [
            self.organization_id,
            *self.categories,
            self.send_id or 0,
            *SendRecipient.MESSAGED_STATUSES,
            self.fire_at - dt.timedelta(days=self.days),
        ]
        among = ""
        if phones is not None:
            among = f" AND r.phone_e164 IN ({', '.join(['%s'] * len(phones))})"
            params.extend(phones)
        params.append(self.messages)
        return (
            f"SELECT r.phone_e164 FROM {recipient} r "
            f"JOIN {send} s ON s.id = r.send_id JOIN {campaign} c ON c.id = s.campaign_id "
            f"WHERE c.organization_id = %s AND s.category IN ({categories}) AND s.id <> %s "
            f"AND r.status IN ({statuses}) AND COALESCE(r.sent_at, r.updated_at) > %s{among} "
            "GROUP BY r.phone_e164 HAVING COUNT(*) >= %s"
        ), params

    def reached_among(self, phones: list[str]) -> set[str]:
        if not phones:
            return set()
        sql, params = self.reached_sql(phones)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return {row[0] for row in cursor.fetchall()}


def capped_phones(send: Send, phones: list[str]) -> set[str]:
    """Which of these phones the frequency cap now holds: the dispatcher's re-check, for a
    message another campaign sent them since this send materialized (or, for a retry wave,
    in the days before now)."""
    now = max(send.scheduled_for, timezone.now())
    cap = FrequencyCap.of(send.campaign, send.category, now, send.pk)
    return cap.reached_among(phones) if cap else set()


@dataclass(frozen=True)
class EventFilter:
    """A send's lead-event filter (seed 001): keep (include) or drop (exclude) the leads
    whose phone has an event of this type, within the minutes before the fire time if set."""

    mode: str
    event_type: str
    within_minutes: int | None
    fire_at: dt.datetime

    def matching(self, organization_id: int) -> QuerySet[LeadEvent]:
        events = LeadEvent.objects.filter(
            organization_id=organization_id,
            event_type=self.event_type,
            phone_e164=OuterRef("phone_e164"),
        )
        if self.within_minutes:
            start = self.fire_at - dt.timedelta(minutes=self.within_minutes)
            events = events.filter(occurred_at__gte=start, occurred_at__lte=self.fire_at)
        return events


@dataclass(frozen=True)
class Eligible:
    """The leads a send of `category` of the campaign reaches. Without a filter event or
    an event filter, the audience before any filter: what the messaging-limit gate counts.
    `reason` is set when the set is empty by rule (a filtered send without its event)."""

    campaign: Campaign
    category: str
    filter_event: AudienceFilterEvent | None = None
    event_filter: EventFilter | None = None
    cap: FrequencyCap | None = None
    reason: str = ""
    # The audiences to read instead of the campaign's saved ones: the editor's preview of a
    # campaign whose audiences are being chosen on the page.
    audiences: tuple | None = None
    # A send at each recipient's local time (issue 16.1): the send's own zone, with which
    # each row also reads its lead's zone (audiences.time_zones), and the zones of the wave
    # being materialized, when only those are wanted (or, `outside_zones`, all but those:
    # the leads of zones the send has no wave for).
    zone_fallback: str | None = None
    zones: tuple[str, ...] | None = None
    outside_zones: bool = False

    @classmethod
    def of_send(cls, send: Send, at: dt.datetime | None = None) -> "Eligible":
        """The send's recipients if it fired at its scheduled time (or `at`: a retry wave's
        time), with its latest filter event: a later event replaces an earlier one, it does
        not add to it."""
        fire_at = at or send.scheduled_for
        event_filter = None
        if send.event_filter_mode != Send.EventFilterMode.OFF:
            event_filter = EventFilter(
                send.event_filter_mode,
                send.event_filter_type,
                send.event_filter_within_minutes,
                fire_at,
            )
        cap = FrequencyCap.of(send.campaign, send.category, fire_at, send.pk)
        eligible = cls(send.campaign, send.category, event_filter=event_filter, cap=cap)
        if send.audience_filter_mode != Send.AudienceFilterMode.WEBHOOK_FILTERED:
            return eligible
        # The event's lists stay in the database, which reads them there (_json_elements):
        # a million ids would be parsed here for nothing.
        latest = (
            send.filter_events.defer("external_ids", "phones_e164")
            .order_by("-received_at", "-id")
            .first()
        )
        if latest is None:
            return cls(send.campaign, send.category, reason=NO_FILTER_EVENT_REASON)
        return cls(send.campaign, send.category, latest, event_filter, cap)

    def with_zones(
        self, fallback: str, zones: tuple[str, ...] | None = None, *, outside: bool = False
    ) -> "Eligible":
        """The same set read with each row's zone, `fallback` being the send's own zone,
        kept to `zones` if given (`outside`: to every other zone)."""
        return replace(self, zone_fallback=fallback, zones=zones, outside_zones=outside)

    def branches(self) -> list[QuerySet[Lead]]:
        """Each membership branch with the rule applied: a lead once per branch it is in."""
        if self.reason:
            return []
        organization_id = self.campaign.organization_id
        stopping = opt_outs(organization_id, stopping_scopes(self.category))
        rule: Q | Combinable = (
            Q(ingest_status__in=reachable_statuses(self.category))
            & ~Q(phone_e164="")
            & ~Exists(stopping.filter(phone_e164=OuterRef("phone_e164")))
        )
        if self.filter_event is not None:
            matched = self._filter_event_matches()
            keep = self.filter_event.mode == AudienceFilterEvent.Mode.INCLUDE
            rule &= matched if keep else ~matched
        if self.event_filter is not None:
            has_event = Exists(self.event_filter.matching(organization_id))
            keep = self.event_filter.mode == Send.EventFilterMode.INCLUDE
            rule &= Q(has_event) if keep else ~Q(has_event)
        audiences = self.campaign.audiences.all() if self.audiences is None else self.audiences
        branches = [branch.filter(rule) for branch in member_branches(audiences)]
        if self.zone_fallback is None:
            return branches
        table = connection.ops.quote_name(Lead._meta.db_table)
        zone = RawSQL(*lead_time_zone_sql(table, self.zone_fallback))
        branches = [branch.annotate(zone=zone) for branch in branches]
        if self.zones is not None:
            # Inside each branch, so a wave reads only its zones' leads (by the lead index on
            # the zone): a phone whose leads read different zones is messaged once, in the
            # first of their waves (the recipient table's one row per phone and send).
            wanted = in_zones(self.zones, self.zone_fallback)
            if self.outside_zones:
                wanted = ~wanted
            branches = [branch.alias(zone_key=zone_key()).filter(wanted) for branch in branches]
        return branches

    def _filter_event_matches(self) -> Q:
        """Leads the filter event names, by external id (case-sensitive) or phone. The lists
        are read from the event's row in the database: 100,000 ids are not 100,000 query
        parameters."""
        external_ids = RawSQL(*self._json_elements("external_ids"))
        phones = RawSQL(*self._json_elements("phones_e164"))
        return (Q(external_id__in=external_ids) & ~Q(external_id="")) | Q(phone_e164__in=phones)

    def _json_elements(self, column: str) -> tuple[str, list]:
        table = AudienceFilterEvent._meta.db_table
        if connection.vendor == "postgresql":
            source = f"jsonb_array_elements_text(f.{column}) FROM {table} f"
        else:
            source = f"j.value FROM {table} f, json_each(f.{column}) j"
        assert self.filter_event is not None  # only asked when the send filters on an event
        return f"SELECT {source} WHERE f.id = %s", [self.filter_event.pk]

    def sql(self) -> tuple[str, list]:
        """SQL of the eligible set, one row per phone (id, phone_e164, limited_reporting, held)
        and its parameters (%s placeholders), for the materializer and the dry run to wrap.
        `held` is the SkipReason that keeps the row from the wire ('' for none)."""
        members, params = self._one_per_phone()
        if self.cap is None:
            return f"SELECT e.*, '' AS held FROM ({members}) e", params
        reached, cap_params = self.cap.reached_sql()
        return (
            "SELECT e.*, CASE WHEN c.phone_e164 IS NULL THEN '' ELSE %s END AS held "
            f"FROM ({members}) e LEFT JOIN ({reached}) c ON c.phone_e164 = e.phone_e164"
        ), [SendRecipient.SkipReason.FREQUENCY_CAP, *params, *cap_params]

    def _one_per_phone(self) -> tuple[str, list]:
        columns = COLUMNS if self.zone_fallback is None else (*COLUMNS, "zone")
        parts: list[str] = []
        params: list = []
        for branch in self.branches():
            try:
                sql, branch_params = branch.values_list(*columns).query.sql_with_params()
            except EmptyResultSet:  # a dynamic filter that can match nothing
                continue
            parts.append(sql)
            params.extend(branch_params)
        if not parts:
            empty = ", ".join(f"'' AS {c}" if c == "zone" else c for c in columns)
            return f"SELECT {empty} FROM {Lead._meta.db_table} WHERE 1 = 0", []
        members = " UNION ALL ".join(parts)
        rest = "".join(f", m.{c}" for c in columns[2:])
        if connection.vendor == "postgresql":
            return (
                f"SELECT DISTINCT ON (m.phone_e164) m.id, m.phone_e164{rest} "
                f"FROM ({members}) m ORDER BY m.phone_e164, m.id"
            ), params
        return (
            f"SELECT MIN(m.id) AS id, m.phone_e164{rest} FROM ({members}) m GROUP BY m.phone_e164"
        ), params

    def count(self) -> int:
        """How many phones the send messages (the cap's held ones not counted)."""
        return self.summary().messaged

    def summary(self) -> "EligibleSummary":
        """The phones messaged, of which in regions where Meta reports little, and the phones
        the frequency cap holds, in one query."""
        sql, params = self.sql()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT COALESCE(SUM(CASE WHEN r.held = '' THEN 1 ELSE 0 END), 0), "
                "COALESCE(SUM(CASE WHEN r.held = '' AND r.limited_reporting THEN 1 ELSE 0 END), 0),"
                " COALESCE(SUM(CASE WHEN r.held = '' THEN 0 ELSE 1 END), 0) "
                f"FROM ({sql}) r",
                params,
            )
            return EligibleSummary(*cursor.fetchone())

    def zone_counts(self) -> dict[str, tuple[int, int]]:
        """{zone: (phones messaged, phones the cap holds)} of a set read with its zones
        (zone_fallback): the local-time waves and the dry run's zones, in one GROUP BY."""
        assert self.zone_fallback is not None, "zones are read with the send's own zone"
        sql, params = self.sql()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT r.zone, SUM(CASE WHEN r.held = '' THEN 1 ELSE 0 END), "
                f"SUM(CASE WHEN r.held = '' THEN 0 ELSE 1 END) FROM ({sql}) r GROUP BY r.zone",
                params,
            )
            return {zone: (messaged, held) for zone, messaged, held in cursor.fetchall()}

    def first_lead_ids(self, limit: int) -> list[int]:
        """The lowest lead ids of the set that the send would message: the dry run's sample."""
        sql, params = self.sql()
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT r.id FROM ({sql}) r WHERE r.held = '' ORDER BY r.id LIMIT %s",
                [*params, limit],
            )
            return [row[0] for row in cursor.fetchall()]


class EligibleSummary(NamedTuple):
    messaged: int
    limited_reporting: int
    held_by_cap: int
