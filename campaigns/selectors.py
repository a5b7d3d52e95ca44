"""Reads about campaigns: for the editor, the scheduling gates, the campaign list and each
send's progress. The campaign page's analytics are campaigns.analytics; a recipient as the
recipient list shows it, campaigns.recipient_list."""

import datetime as dt
from dataclasses import dataclass
from typing import NamedTuple

from django.db.models import Count, Exists, JSONField, Max, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import JSONObject

from audiences.models import Audience, Lead
from audiences.segments import members_of_any
from audiences.selectors import variable_names

from . import eligibility, rendering
from .models import Campaign, Send, SendRecipient, SendWave

RecipientStatus = SendRecipient.Status
# A recipient's status only moves forward, so one in a later stage passed the earlier ones.
FUNNEL_REACHED = {
    RecipientStatus.QUEUED: tuple(RecipientStatus.values),
    RecipientStatus.SENT: (RecipientStatus.SENT, RecipientStatus.DELIVERED, RecipientStatus.READ),
    RecipientStatus.DELIVERED: (RecipientStatus.DELIVERED, RecipientStatus.READ),
    RecipientStatus.READ: (RecipientStatus.READ,),
}


def opted_out_phones_of(campaign: Campaign, scopes: list[str]) -> Exists:
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
        return progress_from_counts(send.recipient_rollup["counts"])
    rows = dict(
        SendRecipient.objects.filter(send=send)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return progress_from_counts(rows)


def progress_from_counts(rows: dict[str, int], limited_reporting: int = 0) -> SendProgress:
    counts = {status: rows.get(status, 0) for status in SendRecipient.Status.values}
    pending = sum(counts[status] for status in SendRecipient.OPEN_STATUSES)
    total = sum(counts.values())
    return SendProgress(counts, total, total - pending, limited_reporting)


def campaign_send_progress(campaign: Campaign) -> dict[int, SendProgress]:
    """send_progress of every send of the campaign, keyed by send id, in one query."""
    return progress_of_sends(list(campaign.sends.all()))


def progress_of_sends(sends: list[Send]) -> dict[int, SendProgress]:
    """send_progress of each of `sends`: one query over the rows of those not purged."""
    rows: dict[int, dict[str, int]] = {}
    limited: dict[int, int] = {}
    grouped = (
        SendRecipient.objects.filter(send_id__in=sends_with_rows(sends))
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
        send.pk: progress_from_counts(
            send.recipient_rollup["counts"], send.recipient_rollup["limited_reporting"]
        )
        if send.recipients_purged_at
        else progress_from_counts(rows.get(send.pk, {}), limited.get(send.pk, 0))
        for send in sends
    }


def sends_with_rows(sends: list[Send]) -> list[int]:
    """Ids of the sends whose figures come from their recipient rows: not purged yet."""
    return [send.pk for send in sends if not send.recipients_purged_at]


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
