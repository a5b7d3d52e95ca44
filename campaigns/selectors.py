"""Reads about campaigns: for the editor, the scheduling gates and the delivery analytics."""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple
from zoneinfo import ZoneInfo

from django.db.models import Count, Exists, JSONField, Max, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import JSONObject
from django.utils import timezone

from audiences.models import Audience, Lead, OptOut
from audiences.segments import members_of_any
from audiences.selectors import variable_names
from messaging.errors import plain_words
from messaging.models import Category, parameter_slots
from setter.csvstream import line_writer

from . import eligibility, rendering
from .models import Campaign, Send, SendRecipient, SendWave


def _opted_out(campaign: Campaign, scopes: list[str]) -> Exists:
    """Whether the outer row's phone opted out of the campaign's organization in `scopes`."""
    stopping = eligibility.opt_outs(campaign.organization_id, scopes)
    return Exists(stopping.filter(phone_e164=OuterRef("phone_e164")))


def eligible_recipient_count(campaign: Campaign, category: str) -> int:
    """Distinct phones a send of `category` could reach before any filter: the eligible set
    the materializer would insert (campaigns.eligibility), so the messaging-limit gate
    compares the limit with the audience the engine would really message. Two queries:
    the segments, then the count over their members."""
    return eligibility.Eligible(campaign, category).count()


def available_variables(audiences) -> set[str] | None:
    """The variables a send's parameters may name: those at least one lead of the audiences
    has. None while there is nothing to check against (no audience, or one still ingesting):
    the schedule gate, which requires ready audiences, checks then."""
    audiences = list(audiences)
    if not audiences or any(a.status != Audience.Status.READY for a in audiences):
        return None
    return variable_names(members_of_any(audiences))


def next_send_position(campaign: Campaign) -> int:
    """The order a new send of the campaign takes: after its last one."""
    if campaign.pk is None:
        return 0
    last = campaign.sends.aggregate(last=Max("position"))["last"]
    return 0 if last is None else last + 1


@dataclass(frozen=True)
class EditorPreview:
    """What the send editor shows beside a template: its parameters (`slots`: the label of
    each, in the mapping's order; `placeholders`: the body's {{n}}), the columns a parameter
    may take, and the message as the first eligible lead would read it (`text` the body,
    `component_texts` its text header and URL buttons)."""

    placeholders: list[int]
    slots: list[str]
    columns: list[str]
    lead: Lead | None
    parameters: list[str]
    text: str
    component_texts: list[str]
    problems: list[str]


def send_editor_preview(
    campaign: Campaign, audiences: list[Audience], template, mapping, category: str
) -> EditorPreview:
    """The editor's live preview, through the rendering module the dispatcher uses, for the
    first lead a send of `category` to these audiences reaches (campaigns.eligibility; the
    send's own filters apply only when it fires). `campaign` may be unsaved: it brings the
    organization and, when chosen, the number (the `sender` templates read)."""
    variables = available_variables(audiences)
    slots = template.parameter_slots
    problems = rendering.validate_parameter_mapping(mapping, slots, variables)
    lead = None
    if audiences:
        eligible = eligibility.Eligible(campaign, category, audiences=tuple(audiences))
        first = eligible.first_lead_ids(1)
        lead = Lead.objects.filter(pk__in=first).first()
    parameters: list[str] = []
    text, texts = "", []
    if lead is None:
        problems.append("No lead of the chosen audiences can receive this send yet.")
    elif not problems:
        sender = rendering.sender_of(campaign) if campaign.whatsapp_number_id else None
        try:
            parameters = rendering.render_parameters(mapping, lead, sender=sender, slots=slots)
        except rendering.MissingParameter as missing:
            problems.append(f"{missing}: that lead would be skipped.")
        else:
            text = rendering.render_body(template.body_text, parameters)
            texts = rendering.component_texts(slots, parameters)
    return EditorPreview(
        placeholders=list(range(1, template.parameter_count + 1)),
        slots=[slot.label for slot in slots],
        columns=rendering.editor_columns(variables),
        lead=lead,
        parameters=parameters,
        text=text,
        component_texts=texts,
        problems=problems,
    )


class ListStats(NamedTuple):
    """A campaign's figures on the campaign list: recipients that reached each stage."""

    recipients: int
    sent: int
    delivered: int
    read: int
    failed: int
    done: int  # settled: neither queued, claimed nor sending
    delivered_reporting: int  # delivered or read, where Meta reports reads
    read_reporting: int

    @property
    def read_rate(self) -> float | None:
        return self.read_reporting / self.delivered_reporting if self.delivered_reporting else None

    @property
    def progress(self) -> float:
        return self.done / self.recipients if self.recipients else 0.0


def with_list_stats(campaigns: QuerySet) -> QuerySet:
    """Campaigns annotated with `list_stats` (a ListStats as JSON) and `next_send_local` (the
    next unfired send's local date, time and zone): one subquery each per campaign, an index
    range of its recipients. Meant for a page of campaigns, not a whole table."""
    reached = {stage: list(statuses) for stage, statuses in FUNNEL_REACHED.items()}
    reporting = Q(limited_reporting=False)

    def count(condition: Q | None = None):
        return Count("id", filter=condition) if condition is not None else Count("id")

    stats = (
        SendRecipient.objects.filter(send__campaign=OuterRef("pk"))
        .order_by()
        .values("send__campaign")
        .annotate(
            stats=JSONObject(
                recipients=count(),
                sent=count(Q(status__in=reached[RecipientStatus.SENT])),
                delivered=count(Q(status__in=reached[RecipientStatus.DELIVERED])),
                read=count(Q(status__in=reached[RecipientStatus.READ])),
                failed=count(Q(status=RecipientStatus.FAILED)),
                done=count(~Q(status__in=SendRecipient.OPEN_STATUSES)),
                delivered_reporting=count(
                    reporting & Q(status__in=reached[RecipientStatus.DELIVERED])
                ),
                read_reporting=count(reporting & Q(status__in=reached[RecipientStatus.READ])),
            )
        )
        .values("stats")
    )
    next_send = (
        Send.objects.filter(campaign=OuterRef("pk"), status=Send.Status.PENDING)
        .order_by("scheduled_for", "position")
        .values(local=JSONObject(date="local_date", time="local_time", zone="time_zone"))[:1]
    )
    return campaigns.annotate(
        list_stats=Subquery(stats, output_field=JSONField()),
        next_send_local=Subquery(next_send, output_field=JSONField()),
    )


def list_stats_of(campaign) -> ListStats:
    """The ListStats a with_list_stats queryset attached (zeros for a campaign never fired)."""
    data = getattr(campaign, "list_stats", None) or {}
    return ListStats(**{field: int(data.get(field) or 0) for field in ListStats._fields})


def with_next_send_at(campaigns: QuerySet) -> QuerySet:
    """Campaigns annotated with `next_send_at`: the earliest send that has not fired yet."""
    return campaigns.annotate(
        next_send_at=Min("sends__scheduled_for", filter=Q(sends__status=Send.Status.PENDING))
    )


class SendProgress(NamedTuple):
    counts: dict[str, int]  # recipients per status, every status present
    total: int
    done: int  # recipients whose outcome is settled (neither queued nor sending)
    limited_reporting: int = 0  # recipients in regions where Meta reports little

    @property
    def progress(self) -> float:
        """Share of the send's recipients that are done, 0–1."""
        return self.done / self.total if self.total else 0.0

    @classmethod
    def total_of(cls, progresses: list["SendProgress"]) -> "SendProgress":
        """The sum over several sends: a campaign's counts."""
        return cls(
            {s: sum(p.counts[s] for p in progresses) for s in SendRecipient.Status.values},
            sum(p.total for p in progresses),
            sum(p.done for p in progresses),
            sum(p.limited_reporting for p in progresses),
        )


def sends_finished_before(cutoff: dt.datetime) -> QuerySet:
    """Sends that never dispatch again and ended before `cutoff`, for the retention purges.
    A missed send never started, so it has no completed_at: its fire time counts."""
    ended = Q(completed_at__lt=cutoff) | Q(completed_at=None, scheduled_for__lt=cutoff)
    retrying = Q(waves__status=SendWave.Status.PENDING)
    return Send.objects.filter(ended, status__in=Send.FINISHED_STATUSES).exclude(retrying)


def send_fraction_done(send: Send, progress: SendProgress) -> float:
    """0–1: settled recipients over all of them; a finished send is done, even an empty one
    (missed, or cancelled before it materialized)."""
    return 1.0 if send.status in Send.FINISHED_STATUSES else progress.progress


def campaign_fraction_done(campaign: Campaign, send_fractions: list[float]) -> float:
    """The mean of the sends' fractions, so a send not materialized yet counts as not started
    rather than as nothing to do; a finished campaign is done."""
    if campaign.status in Campaign.FINISHED_STATUSES:
        return 1.0
    return sum(send_fractions) / len(send_fractions) if send_fractions else 0.0


def send_progress(send: Send) -> SendProgress:
    """Counts per recipient status and progress of one send, in one query (none once its
    recipients were purged: their rollup has them)."""
    if send.recipients_purged_at:
        return _progress(send.recipient_rollup["counts"])
    rows = dict(
        SendRecipient.objects.filter(send=send)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return _progress(rows)


def _progress(rows: dict[str, int], limited_reporting: int = 0) -> SendProgress:
    counts = {status: rows.get(status, 0) for status in SendRecipient.Status.values}
    pending = sum(counts[status] for status in SendRecipient.OPEN_STATUSES)
    total = sum(counts.values())
    return SendProgress(counts, total, total - pending, limited_reporting)


def campaign_send_progress(campaign: Campaign) -> dict[int, SendProgress]:
    """send_progress of every send of the campaign, keyed by send id, in one query."""
    return _sends_progress(list(campaign.sends.all()))


def _sends_progress(sends: list[Send]) -> dict[int, SendProgress]:
    """send_progress of each of `sends`: one query over the rows of those not purged."""
    rows: dict[int, dict[str, int]] = {}
    limited: dict[int, int] = {}
    grouped = (
        SendRecipient.objects.filter(send_id__in=_with_rows(sends))
        .values_list("send_id", "status", "limited_reporting")
        .annotate(n=Count("id"))
        .values_list("send_id", "status", "limited_reporting", "n")
    )
    for send_id, status, limited_reporting, n in grouped:
        by_status = rows.setdefault(send_id, {})
        by_status[status] = by_status.get(status, 0) + n
        if limited_reporting:
            limited[send_id] = limited.get(send_id, 0) + n
    return {
        send.pk: _rolled_up_funnel(send).progress
        if send.recipients_purged_at
        else _progress(rows.get(send.pk, {}), limited.get(send.pk, 0))
        for send in sends
    }


def _with_rows(sends: list[Send]) -> list[int]:
    """Ids of the sends whose figures come from their recipient rows: not purged yet."""
    return [send.pk for send in sends if not send.recipients_purged_at]


# --- Analytics: what the campaign page shows and its progress view polls ---------------------

RecipientStatus = SendRecipient.Status
# A recipient's status only moves forward, so one in a later stage passed the earlier ones.
FUNNEL_REACHED = {
    RecipientStatus.QUEUED: tuple(RecipientStatus.values),
    RecipientStatus.SENT: (RecipientStatus.SENT, RecipientStatus.DELIVERED, RecipientStatus.READ),
    RecipientStatus.DELIVERED: (RecipientStatus.DELIVERED, RecipientStatus.READ),
    RecipientStatus.READ: (RecipientStatus.READ,),
}
LIVE_POLL_MS = 2_000  # a send is firing, about to fire, or its statuses are flowing back
WAITING_POLL_MS = 30_000  # a scheduled send is further away: notice when it comes near
DUE_SOON = dt.timedelta(minutes=3)
# Meta's delivered/read webhooks keep arriving after the last message left.
FEEDBACK_WINDOW = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class ErrorGroup:
    code: str
    title: str
    count: int


@dataclass(frozen=True)
class Funnel:
    """Recipients of a send (or of all a campaign's sends) through the funnel."""

    progress: SendProgress
    delivered_reporting: int  # delivered or read, outside the limited-reporting regions
    read_reporting: int
    errors: list[ErrorGroup]  # failed recipients by Meta error code, largest first

    @property
    def reached(self) -> dict[str, int]:
        """Recipients that reached each funnel stage (queued counts every recipient)."""
        counts = self.progress.counts
        return {stage: sum(counts[s] for s in FUNNEL_REACHED[stage]) for stage in FUNNEL_REACHED}

    @property
    def table(self) -> list[tuple[str, int, int | None]]:
        """(status, recipients now in it, recipients that reached it or None off the funnel)."""
        reached = self.reached
        return [(s, n, reached.get(s)) for s, n in self.progress.counts.items()]

    @property
    def read_rate(self) -> float | None:
        """Read over delivered among recipients Meta reports reads for; None before any."""
        if not self.delivered_reporting:
            return None
        return self.read_reporting / self.delivered_reporting

    @classmethod
    def combine(cls, funnels: list["Funnel"]) -> "Funnel":
        errors: dict[str, ErrorGroup] = {}
        for error in (e for f in funnels for e in f.errors):
            seen = errors.get(error.code)
            count = error.count + (seen.count if seen else 0)
            errors[error.code] = ErrorGroup(error.code, error.title, count)
        return cls(
            SendProgress.total_of([f.progress for f in funnels]),
            sum(f.delivered_reporting for f in funnels),
            sum(f.read_reporting for f in funnels),
            sorted(errors.values(), key=lambda e: (-e.count, e.code)),
        )


def ended_early_note(status_label: str, progress: SendProgress) -> str:
    """What a stop or a cancel came to, instead of a "100% done" that never happened."""
    counts = progress.counts
    messaged = sum(counts[s] for s in FUNNEL_REACHED[RecipientStatus.SENT])
    if not messaged:
        return f"{status_label} before any message was sent"
    return (
        f"{status_label} after {messaged:,} of {progress.total:,} messages were sent "
        f"({counts[RecipientStatus.SKIPPED]:,} skipped)"
    )


@dataclass(frozen=True)
class WaveAnalytics:
    """A retry wave of a send (issue 15.2) and where the rows it queued again stand now."""

    wave: SendWave
    counts: dict[str, int]

    @property
    def label(self) -> str:
        return f"Retry {self.wave.number - 1}"

    @property
    def note(self) -> str:
        """One line for the send's progress: when, and what it came to so far."""
        wave = self.wave
        if wave.status == SendWave.Status.PENDING:
            return f"{self.label} scheduled for {wave.scheduled_for:%Y-%m-%d %H:%M} UTC"
        if wave.status == SendWave.Status.CANCELLED:
            return f"{self.label} called off"
        counts = ", ".join(f"{status} {n:,}" for status, n in self.counts.items() if n)
        return (
            f"{self.label} at {wave.scheduled_for:%Y-%m-%d %H:%M} UTC: {wave.requeued:,} of "
            f"{wave.chosen:,} failed recipients queued again" + (f" ({counts})" if counts else "")
        )


def send_waves(sends: list[Send]) -> dict[int, list[WaveAnalytics]]:
    """Each send's retry waves in order, with their rows by status: two queries."""
    waves = list(SendWave.objects.filter(send__in=sends).order_by("send_id", "number"))
    if not waves:
        return {}
    counts: dict[tuple[int, int], dict[str, int]] = {}
    for send_id, wave, status, n in (
        SendRecipient.objects.filter(send_id__in={w.send_id for w in waves}, wave__gt=1)
        .order_by()
        .values_list("send_id", "wave", "status")
        .annotate(n=Count("id"))
    ):
        counts.setdefault((send_id, wave), dict.fromkeys(RecipientStatus.values, 0))[status] = n
    result: dict[int, list[WaveAnalytics]] = {}
    for wave in waves:
        rows = counts.get((wave.send_id, wave.number), dict.fromkeys(RecipientStatus.values, 0))
        result.setdefault(wave.send_id, []).append(WaveAnalytics(wave, rows))
    return result


@dataclass(frozen=True)
class SendAnalytics:
    send: Send
    funnel: Funnel
    opted_out: int  # audience phones opted out of the send's category and not messaged by it
    invalid_phone: int  # audience rows whose phone could not be parsed
    us_blocked: int  # US audience rows a MARKETING send may not reach (Meta error 131049)
    waves: tuple[WaveAnalytics, ...] = ()  # its retries of failed recipients

    @property
    def ineligible(self) -> int:
        return self.invalid_phone + self.us_blocked

    @property
    def progress(self) -> float:
        return send_fraction_done(self.send, self.funnel.progress)

    @property
    def ended_early(self) -> str:
        """For a stopped or cancelled send, what it came to; empty otherwise."""
        if self.send.status not in (Send.Status.STOPPED, Send.Status.CANCELLED):
            return ""
        return ended_early_note(self.send.get_status_display(), self.funnel.progress)

    @property
    def fire_at_utc(self) -> str:
        """The fire instant in UTC, ISO 8601: the browser shows it in the viewer's zone."""
        return self.send.scheduled_for.astimezone(dt.UTC).isoformat()

    @property
    def local_fire_time(self) -> str:
        """The fire time as the marketer set it: in the send's own zone."""
        local = self.send.scheduled_for.astimezone(ZoneInfo(self.send.time_zone))
        return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({self.send.time_zone})"


@dataclass(frozen=True)
class AudienceFacts:
    """The campaign's audiences as the engine sees them, counted once per campaign."""

    invalid_phone: int
    ineligible_geo: int  # US numbers: blocked for MARKETING sends, fine for UTILITY ones
    opted_out_all: int  # distinct phones opted out of every message
    opted_out_marketing: int  # distinct phones opted out of marketing only


@dataclass(frozen=True)
class CampaignAnalytics:
    campaign: Campaign
    funnel: Funnel
    sends: list[SendAnalytics]
    audience: AudienceFacts
    poll_after_ms: int | None  # when the page should ask again; None once nothing can change

    @property
    def progress(self) -> float:
        return campaign_fraction_done(self.campaign, [a.progress for a in self.sends])

    @property
    def ended_early(self) -> str:
        """For a stopped or cancelled campaign, what it came to; empty otherwise."""
        if self.campaign.status not in (Campaign.Status.STOPPED, Campaign.Status.CANCELLED):
            return ""
        return ended_early_note(self.campaign.get_status_display(), self.funnel.progress)

    @property
    def next_send(self) -> SendAnalytics | None:
        pending = [a for a in self.sends if a.send.status == Send.Status.PENDING]
        return min(pending, key=lambda a: a.send.scheduled_for, default=None)


def _funnels(sends: list[Send]) -> dict[int, Funnel]:
    """Each send's funnel: the shared progress query, plus one GROUP BY for reads reported
    outside limited-reporting regions and one for failures by error code; a purged send's
    is its rollup."""
    progress = _sends_progress(sends)
    with_rows = _with_rows(sends)
    reporting: dict[tuple[int, str], int] = {
        (send_id, status): n
        for send_id, status, n in SendRecipient.objects.filter(
            send_id__in=with_rows,
            limited_reporting=False,
            status__in=FUNNEL_REACHED[RecipientStatus.DELIVERED],
        )
        .order_by()
        .values_list("send_id", "status")
        .annotate(n=Count("id"))
    }
    errors: dict[int, list[ErrorGroup]] = {}
    for send_id, code, title, n in (
        SendRecipient.objects.filter(send_id__in=with_rows, status=RecipientStatus.FAILED)
        .order_by()
        .values_list("send_id", "error_code")
        .annotate(title=Max("error_title"), n=Count("id"))
        .order_by("-n", "error_code")
    ):
        errors.setdefault(send_id, []).append(ErrorGroup(code, title, n))
    funnels = {}
    for send in sends:
        if send.recipients_purged_at:
            funnels[send.pk] = _rolled_up_funnel(send)
            continue
        read = reporting.get((send.pk, RecipientStatus.READ), 0)
        delivered = reporting.get((send.pk, RecipientStatus.DELIVERED), 0) + read
        funnels[send.pk] = Funnel(progress[send.pk], delivered, read, errors.get(send.pk, []))
    return funnels


def recipient_rollup(send: Send) -> dict:
    """What the analytics and metrics read from a send's recipient rows, as JSON: the
    retention purge keeps it on the send (recipient_rollup) before it deletes the rows.
    `opted_out` is counted against the opt-outs as they are at that moment."""
    funnel = _funnels([send])[send.pk]
    opted_out = _audience_counts(send.campaign, [send])[f"opted_out_{send.pk}"]
    return {
        "counts": funnel.progress.counts,
        "limited_reporting": funnel.progress.limited_reporting,
        "delivered_reporting": funnel.delivered_reporting,
        "read_reporting": funnel.read_reporting,
        "errors": [[e.code, e.title, e.count] for e in funnel.errors],
        "opted_out": opted_out,
        # Meta accepted these (sent_at set): the metrics' messages-sent counter.
        "sent": send.recipients.exclude(sent_at=None).count(),
    }


def _rolled_up_funnel(send: Send) -> Funnel:
    rollup = send.recipient_rollup
    return Funnel(
        _progress(rollup["counts"], rollup["limited_reporting"]),
        rollup["delivered_reporting"],
        rollup["read_reporting"],
        [ErrorGroup(*error) for error in rollup["errors"]],
    )


def _audience_counts(campaign: Campaign, sends: list[Send]) -> dict[str, int]:
    """One aggregate over the campaign's leads: ingest rejects, opt-outs, and per send the
    opted-out phones it would have reached and did not message."""
    opted_out_any = _opted_out(campaign, OptOut.Scope.values)
    opted_out_all = _opted_out(campaign, [OptOut.Scope.ALL])
    aggregates = {
        "invalid_phone": Count("id", filter=Q(ingest_status=Lead.IngestStatus.INVALID_PHONE)),
        "ineligible_geo": Count("id", filter=Q(ingest_status=Lead.IngestStatus.INELIGIBLE_GEO)),
        "opted_out_all": Count("phone_e164", distinct=True, filter=Q(opted_out_all)),
        "opted_out_marketing": Count(
            "phone_e164", distinct=True, filter=Q(opted_out_any) & ~Q(opted_out_all)
        ),
    }
    for send in sends:
        if send.recipients_purged_at:
            continue
        statuses = eligibility.reachable_statuses(send.category)
        scopes = eligibility.stopping_scopes(send.category)
        messaged = SendRecipient.objects.filter(
            send=send, phone_e164=OuterRef("phone_e164")
        ).exclude(status__in=(RecipientStatus.QUEUED, RecipientStatus.SKIPPED))
        aggregates[f"opted_out_{send.pk}"] = Count(
            "phone_e164",
            distinct=True,
            filter=Q(ingest_status__in=statuses)
            & Q(_opted_out(campaign, scopes))
            & ~Q(Exists(messaged)),
        )
    counts = members_of_any(campaign.audiences.all()).aggregate(**aggregates)
    for send in sends:
        if send.recipients_purged_at:
            counts[f"opted_out_{send.pk}"] = send.recipient_rollup["opted_out"]
    return counts


def _poll_after_ms(campaign: Campaign, sends: list[Send], now: dt.datetime) -> int | None:
    """How soon the page should look again: often while anything moves, rarely while a
    scheduled send is far off, never once nothing more can happen."""
    if any(send.status in Send.FIRING_STATUSES for send in sends):
        return LIVE_POLL_MS
    if any(
        send.completed_at and now - send.completed_at < FEEDBACK_WINDOW
        for send in sends
        if send.status == Send.Status.COMPLETED
    ):
        return LIVE_POLL_MS
    if campaign.status not in Campaign.ACTIVE_STATUSES:
        return None
    due = [send.scheduled_for for send in sends if send.status == Send.Status.PENDING]
    if not due:
        return None
    return LIVE_POLL_MS if min(due) - now < DUE_SOON else WAITING_POLL_MS


def campaign_analytics(campaign: Campaign) -> CampaignAnalytics:
    """Everything the campaign page shows about delivery, in a fixed number of queries
    whatever the number of recipients: sends, recipients by status, reads reported, failures
    by code, the campaign's segments and one aggregate over their members."""
    sends = list(campaign.sends.order_by("scheduled_for", "position", "pk"))
    funnels = _funnels(sends)
    counts = _audience_counts(campaign, sends)
    waves = send_waves(sends)
    per_send = [
        SendAnalytics(
            send,
            funnels[send.pk],
            opted_out=counts[f"opted_out_{send.pk}"],
            invalid_phone=counts["invalid_phone"],
            us_blocked=counts["ineligible_geo"] if send.category == Category.MARKETING else 0,
            waves=tuple(waves.get(send.pk, ())),
        )
        for send in sends
    ]
    return CampaignAnalytics(
        campaign,
        Funnel.combine(list(funnels.values())),
        per_send,
        AudienceFacts(
            counts["invalid_phone"],
            counts["ineligible_geo"],
            counts["opted_out_all"],
            counts["opted_out_marketing"],
        ),
        _poll_after_ms(campaign, sends, timezone.now()),
    )


def _funnel_json(funnel: Funnel) -> dict:
    return {
        "counts": funnel.progress.counts,
        "reached": funnel.reached,
        "total": funnel.progress.total,
        "done": funnel.progress.done,
        "read_rate": None if funnel.read_rate is None else round(funnel.read_rate, 4),
        "limited_reporting": funnel.progress.limited_reporting,
        "errors": [{"code": e.code, "title": e.title, "count": e.count} for e in funnel.errors],
    }


def analytics_json(analytics: CampaignAnalytics) -> dict:
    """The campaign page's numbers as the progress view serves them and its script reads."""
    return {
        "campaign": {
            "id": analytics.campaign.pk,
            "status": analytics.campaign.status,
            "status_display": analytics.campaign.get_status_display(),
            **_funnel_json(analytics.funnel),
            "progress": round(analytics.progress, 4),
        },
        "sends": [
            {
                "id": a.send.pk,
                "status": a.send.status,
                "status_display": a.send.get_status_display(),
                "status_reason": a.send.status_reason,
                "scheduled_for": a.fire_at_utc,
                "opted_out": a.opted_out,
                "ineligible": a.ineligible,
                **_funnel_json(a.funnel),
                "progress": round(a.progress, 4),
                "waves": [
                    {
                        "number": w.wave.number,
                        "status": w.wave.status,
                        "scheduled_for": w.wave.scheduled_for.astimezone(dt.UTC).isoformat(),
                        "include": w.wave.include,
                        "chosen": w.wave.chosen,
                        "requeued": w.wave.requeued,
                        "counts": w.counts,
                        "note": w.note,
                    }
                    for w in a.waves
                ],
            }
            for a in analytics.sends
        ],
        "next_send_id": analytics.next_send.send.pk if analytics.next_send else None,
        "poll_after_ms": analytics.poll_after_ms,
    }


# --- One recipient as the recipient list and its export show it ------------------------------

# The steps of a recipient's timeline in the order they happen, each with the column that
# holds its time (set by the transitions of campaigns.recipients and Meta's reports).
RECIPIENT_TIMELINE = (
    ("queued", "queued_at"),
    ("sent", "sent_at"),
    ("delivered", "delivered_at"),
    ("read", "read_at"),
    ("failed", "failed_at"),
)


def contact_name(first_name: str | None, last_name: str | None) -> str:
    """The lead's name as the list shows it ("" when the lead has none, or is gone)."""
    return " ".join(part for part in (first_name, last_name) if part)


def recipient_message(
    template_body: str, parameters: list[str] | None, template_components=()
) -> str:
    """The message the recipient got: the send's body when it fired, filled with the
    parameters its last attempt carried, then its text header and URL buttons as they were
    then (one line each); "" for a row never put on the wire."""
    if parameters is None or not template_body:
        return ""
    slots = parameter_slots(template_body, template_components)
    return rendering.render_message(template_body, slots, parameters)


def failure_reason(error_code: str, error_title: str) -> str:
    """Why the row did not (yet) reach the person, in plain words: messaging.errors' words
    for Meta's code, else the row's own title (Meta's, a skip's, a lost worker's)."""
    return plain_words(error_code) or error_title


def timeline(row) -> list[tuple[str, dt.datetime]]:
    """The steps the recipient reached, with their times: queued → sent → delivered → read
    (or failed). `row` has the timeline's columns as attributes."""
    steps = [(step, getattr(row, column)) for step, column in RECIPIENT_TIMELINE]
    return [(step, at) for step, at in steps if at is not None]


RECIPIENT_CSV_COLUMNS = (
    "phone_e164",
    "contact_name",
    "send_id",
    "send__name",
    "send__campaign__name",
    "status",
    "message",
    "error_code",
    "failure_reason",
    "error_title",
    "attempts",
    "wamid",
    "limited_reporting",
    *(column for _, column in RECIPIENT_TIMELINE),
)
# What the export reads per row: its plain columns and what the derived ones are made of.
_DERIVED_CSV_COLUMNS = ("contact_name", "message", "failure_reason")
_RECIPIENT_CSV_VALUES = (
    *(column for column in RECIPIENT_CSV_COLUMNS if column not in _DERIVED_CSV_COLUMNS),
    "lead__first_name",
    "lead__last_name",
    "send__template_body",
    "send__template_components",
    "parameters",
)


def recipients_csv(recipients: QuerySet) -> Iterator[str]:
    """The recipients as CSV lines, with the recipient list's columns, read in chunks so a
    100,000-row send streams in constant memory."""
    writer = line_writer()
    yield writer.writerow(RECIPIENT_CSV_COLUMNS)
    for row in recipients.values(*_RECIPIENT_CSV_VALUES).iterator(chunk_size=2000):
        row["contact_name"] = contact_name(row["lead__first_name"], row["lead__last_name"])
        row["message"] = recipient_message(
            row["send__template_body"], row["parameters"], row["send__template_components"]
        )
        row["failure_reason"] = failure_reason(row["error_code"], row["error_title"])
        yield writer.writerow(
            [
                value.isoformat() if isinstance(value, dt.datetime) else value
                for value in (row[column] for column in RECIPIENT_CSV_COLUMNS)
            ]
        )


class CancelImpact(NamedTuple):
    sends: int  # sends that will never fire (or stop firing)
    unmaterialized_sends: int  # of those, sends whose recipients were not queued yet
    recipients: int  # recipients queued or claimed, not yet on the wire


def cancel_impact(campaign: Campaign) -> CancelImpact:
    """What cancelling the campaign now would skip, for the admin's confirmation page."""
    open_sends = campaign.sends.exclude(status__in=Send.FINISHED_STATUSES)
    counts = open_sends.aggregate(
        sends=Count("pk"), unmaterialized=Count("pk", filter=Q(status=Send.Status.PENDING))
    )
    recipients = SendRecipient.objects.filter(
        send__in=open_sends,
        status__in=SendRecipient.UNSENT_STATUSES,
    ).count()
    return CancelImpact(counts["sends"], counts["unmaterialized"], recipients)
