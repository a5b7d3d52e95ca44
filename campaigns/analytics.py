"""The campaign page's delivery analytics, and what its progress view polls: funnels per send
and campaign, failures by code, retry waves, audience facts, in a fixed number of queries."""

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db.models import Count, Exists, Max, OuterRef, Q
from django.utils import timezone

from audiences.models import Lead, OptOut
from audiences.segments import members_of_any
from messaging.models import Category

from . import eligibility
from .models import Campaign, Send, SendRecipient, SendWave
from .selectors import (
    FUNNEL_REACHED,
    RecipientStatus,
    SendProgress,
    campaign_fraction_done,
    opted_out_phones_of,
    progress_from_counts,
    progress_of_sends,
    send_fraction_done,
    sends_with_rows,
)

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
    """A wave of a send — a retry of its failed recipients (issue 15.2) or the share of a
    local-time send read at one instant (issue 16.1) — and where its rows stand now."""

    wave: SendWave
    counts: dict[str, int]

    @property
    def is_local(self) -> bool:
        return self.wave.kind == SendWave.Kind.LOCAL

    @property
    def label(self) -> str:
        return f"Wave {self.wave.number}" if self.is_local else f"Retry {self.wave.number - 1}"

    @property
    def recipients(self) -> int:
        return self.wave.recipients if self.is_local else self.wave.requeued

    @property
    def summary(self) -> str:
        """Who the wave is: its zones, or the failed recipients it chose."""
        wave = self.wave
        if not self.is_local:
            return f"{wave.requeued:,} of {wave.chosen:,} failed recipients queued again"
        moved = ""
        if wave.shifted_zones:
            moved = (
                f"; the local time does not exist that day in {', '.join(wave.shifted_zones)}: "
                f"the next valid minute there ({wave.shifted:,} recipients)"
            )
        return f"{', '.join(wave.zones)}{moved}"

    @property
    def note(self) -> str:
        """One line for the send's progress: when, and what it came to so far."""
        wave = self.wave
        at = f"{wave.scheduled_for:%Y-%m-%d %H:%M} UTC"
        if wave.status == SendWave.Status.PENDING:
            return f"{self.label} scheduled for {at}" + (
                f" ({self.summary})" if self.is_local else ""
            )
        if wave.status == SendWave.Status.CANCELLED:
            return f"{self.label} called off"
        if wave.status == SendWave.Status.MISSED:
            return (
                f"{self.label} missed: the system reached {at} too late, "
                f"{wave.recipients:,} recipients skipped ({self.summary})"
            )
        counts = ", ".join(f"{status} {n:,}" for status, n in self.counts.items() if n)
        done = f"{wave.recipients:,} recipients, {self.summary}" if self.is_local else self.summary
        return f"{self.label} at {at}: {done}" + (f" ({counts})" if counts else "")


def send_waves(sends: list[Send]) -> dict[int, list[WaveAnalytics]]:
    """Each send's waves in order, with their rows by status: two queries."""
    waves = list(SendWave.objects.filter(send__in=sends).order_by("send_id", "number"))
    if not waves:
        return {}
    counts: dict[tuple[int, int], dict[str, int]] = {}
    for send_id, wave, status, n in (
        SendRecipient.objects.filter(send_id__in={w.send_id for w in waves})
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
    progress = progress_of_sends(sends)
    with_rows = sends_with_rows(sends)
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
        progress_from_counts(rollup["counts"], rollup["limited_reporting"]),
        rollup["delivered_reporting"],
        rollup["read_reporting"],
        [ErrorGroup(*error) for error in rollup["errors"]],
    )


def _audience_counts(campaign: Campaign, sends: list[Send]) -> dict[str, int]:
    """One aggregate over the campaign's leads: ingest rejects, opt-outs, and per send the
    opted-out phones it would have reached and did not message."""
    opted_out_any = opted_out_phones_of(campaign, OptOut.Scope.values)
    opted_out_all = opted_out_phones_of(campaign, [OptOut.Scope.ALL])
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
            & Q(opted_out_phones_of(campaign, scopes))
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
                        "kind": w.wave.kind,
                        "include": w.wave.include,
                        "chosen": w.wave.chosen,
                        "requeued": w.wave.requeued,
                        "zones": w.wave.zones,
                        "recipients": w.recipients,
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
