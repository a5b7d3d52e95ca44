"""Reads about campaigns that the editor and the scheduling gates share."""

from typing import NamedTuple

from django.db.models import Count, Exists, Min, OuterRef, Q, QuerySet

from audiences.models import Lead, OptOut
from messaging.models import Category

from .models import Campaign, Send, SendRecipient


def eligible_recipient_count(campaign: Campaign, category: str) -> int:
    """Distinct phones a send of `category` could reach before any filter: leads of the
    campaign's audiences that ingested ok, minus the organization's opt-outs.

    Mirrors the materializer's rules (UTILITY may reach US numbers, MARKETING may not;
    a marketing opt-out only stops MARKETING) so the messaging-limit gate compares the
    limit with the audience the engine would really message. One query.
    """
    marketing = category == Category.MARKETING
    statuses = [Lead.IngestStatus.OK]
    scopes = [OptOut.Scope.ALL, OptOut.Scope.MARKETING]
    if not marketing:
        statuses.append(Lead.IngestStatus.INELIGIBLE_GEO)
        scopes = [OptOut.Scope.ALL]
    opted_out = OptOut.objects.filter(
        organization_id=campaign.organization_id,
        phone_e164=OuterRef("phone_e164"),
        scope__in=scopes,
    )
    return (
        Lead.objects.filter(audience__campaigns=campaign, ingest_status__in=statuses)
        .exclude(phone_e164="")
        .filter(~Exists(opted_out))
        .values("phone_e164")
        .distinct()
        .count()
    )


def with_next_send_at(campaigns: QuerySet) -> QuerySet:
    """Campaigns annotated with `next_send_at`: the earliest send that has not fired yet."""
    return campaigns.annotate(
        next_send_at=Min("sends__scheduled_for", filter=Q(sends__status=Send.Status.PENDING))
    )


class SendProgress(NamedTuple):
    counts: dict[str, int]  # recipients per status, every status present
    total: int
    done: int  # recipients whose outcome is settled (neither queued nor sending)

    @property
    def progress(self) -> float:
        """Share of the send's recipients that are done, 0–1."""
        return self.done / self.total if self.total else 0.0


def send_progress(send: Send) -> SendProgress:
    """Counts per recipient status and progress of one send, in one query."""
    rows = dict(
        SendRecipient.objects.filter(send=send)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    counts = {status: rows.get(status, 0) for status in SendRecipient.Status.values}
    pending = counts[SendRecipient.Status.QUEUED] + counts[SendRecipient.Status.SENDING]
    total = sum(counts.values())
    return SendProgress(counts, total, total - pending)
