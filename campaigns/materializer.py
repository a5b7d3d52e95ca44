"""The materializer: turns a send's audience, filters and opt-outs into its recipient rows.

It is the only place the recipient set is computed. One INSERT … SELECT per send does the
whole job inside the database, so 100,000 leads cost one round trip, and the send's status
moves from pending to materialized in the same transaction: a crash leaves the send
pending and nothing half-written, and a second run finds nothing to do.
"""

import datetime as dt
import logging
import re
import time
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audiences import segments
from audiences.models import Audience, Lead, LeadEvent, OptOut, SegmentTarget
from messaging.models import Category

from . import services
from .models import AudienceFilterEvent, Campaign, Send, SendRecipient
from .rendering import MissingParameter, compile_parameters, render_body, sender_of

logger = logging.getLogger(__name__)

NO_FILTER_EVENT_REASON = (
    "No recipients: the send's audience filter is on, but no filter event arrived before the "
    "deadline."
)


class MaterializeResult(NamedTuple):
    send_id: int
    status: str
    recipient_count: int
    reason: str = ""


def _json_elements(column: str) -> str:
    """SQL yielding the text elements of a JSON list column of the filter event."""
    table = AudienceFilterEvent._meta.db_table
    if connection.vendor == "postgresql":
        source = f"jsonb_array_elements_text(f.{column}) FROM {table} f"
    else:
        source = f"j.value FROM {table} f, json_each(f.{column}) j"
    return f"SELECT {source} WHERE f.id = %(filter_event)s"


def _eligible_sql(send: Send, filter_event: AudienceFilterEvent | None, fire_at: dt.datetime):
    """SQL of the send's recipients, one row per phone (id, phone_e164, limited_reporting),
    and its parameters: the product's rules, written once for materializing and previewing."""
    lead, optout = Lead._meta.db_table, OptOut._meta.db_table
    event_table = LeadEvent._meta.db_table
    is_marketing = send.category == Category.MARKETING
    params = {
        "send": send.pk,
        "campaign": send.campaign_id,
        "organization": send.campaign.organization_id,
        "ok": Lead.IngestStatus.OK,
        "geo": Lead.IngestStatus.INELIGIBLE_GEO,
        "all": OptOut.Scope.ALL,
        "marketing": OptOut.Scope.MARKETING,
    }
    # UTILITY sends may reach US numbers; MARKETING ones never (Meta error 131049).
    statuses = (
        "(l.ingest_status = %(ok)s)" if is_marketing else "(l.ingest_status IN (%(ok)s, %(geo)s))"
    )
    optout_scopes = (
        "(o.scope = %(all)s OR o.scope = %(marketing)s)" if is_marketing else "o.scope = %(all)s"
    )
    conditions = [
        statuses,
        "l.phone_e164 <> ''",
        f"NOT EXISTS (SELECT 1 FROM {optout} o WHERE o.organization_id = %(organization)s "
        f"AND o.phone_e164 = l.phone_e164 AND {optout_scopes})",
    ]
    if filter_event is not None:
        params["filter_event"] = filter_event.pk
        matches = (
            f"((l.external_id <> '' AND l.external_id IN ({_json_elements('external_ids')})) "
            f"OR l.phone_e164 IN ({_json_elements('phones_e164')}))"
        )
        keep = filter_event.mode == AudienceFilterEvent.Mode.INCLUDE
        conditions.append(matches if keep else f"NOT {matches}")
    if send.event_filter_mode != Send.EventFilterMode.OFF:
        params["event_type"] = send.event_filter_type
        window = ""
        if send.event_filter_within_minutes:
            params["window_start"] = fire_at - dt.timedelta(
                minutes=send.event_filter_within_minutes
            )
            params["fire_at"] = fire_at
            window = "AND e.occurred_at >= %(window_start)s AND e.occurred_at <= %(fire_at)s"
        has_event = (
            f"EXISTS (SELECT 1 FROM {event_table} e WHERE e.organization_id = %(organization)s "
            f"AND e.event_type = %(event_type)s AND e.phone_e164 = l.phone_e164 {window})"
        )
        keep = send.event_filter_mode == Send.EventFilterMode.INCLUDE
        conditions.append(has_event if keep else f"NOT {has_event}")

    rules = " AND ".join(conditions)
    eligible = " UNION ".join(
        f"SELECT l.id, l.phone_e164, l.limited_reporting FROM {lead} l {members} AND {rules}"
        for members in _member_sources(send.campaign, params)
    )
    # One row per phone: a phone present in two audiences of the campaign gets one message.
    one_per_phone = (
        f"WITH eligible AS ({eligible}) SELECT e.id, e.phone_e164, e.limited_reporting "
        "FROM eligible e WHERE e.id IN (SELECT MIN(id) FROM eligible GROUP BY phone_e164)"
    )
    return one_per_phone, params


def _member_sources(campaign: Campaign, params: dict) -> list[str]:
    """The ways a lead `l` is a member of the campaign's segments, as `[JOIN …] WHERE …`:
    the leads its audiences own, their targets, the leads their dynamic filters match.
    Branches that cannot contribute are left out, so a plain CSV campaign is one join."""
    audiences = list(
        campaign.audiences.only("id", "organization_id", "source", "filter", "all_leads")
    )
    through = Campaign.audiences.through._meta.db_table
    in_campaign = "ca.campaign_id = %(campaign)s"
    sources = []
    if any(not segments.is_dynamic(audience) for audience in audiences):
        sources.append(f"JOIN {through} ca ON ca.audience_id = l.audience_id WHERE {in_campaign}")
        if SegmentTarget.objects.filter(audience__in=audiences).exists():
            sources.append(
                f"JOIN {SegmentTarget._meta.db_table} st ON st.lead_id = l.id "
                f"JOIN {through} ca ON ca.audience_id = st.audience_id WHERE {in_campaign}"
            )
    dynamic = segments.dynamic_members_sql(audiences)
    if dynamic is not None:
        members = _named_placeholders(*dynamic, params, prefix="member")
        sources.append(f"WHERE l.organization_id = %(organization)s AND l.id IN ({members})")
    return sources or ["WHERE 1 = 0"]


def _named_placeholders(sql: str, values: list, params: dict, *, prefix: str) -> str:
    """ORM SQL (%s placeholders) rewritten to named ones added to params, for embedding."""
    numbered = iter(enumerate(values))

    def name(match: re.Match) -> str:
        if match.group() == "%%":
            return "%%"
        index, value = next(numbered)
        params[f"{prefix}_{index}"] = value
        return f"%({prefix}_{index})s"

    return re.sub(r"%%|%s", name, sql)


def _insert_sql(send: Send, filter_event: AudienceFilterEvent | None, fire_at: dt.datetime):
    """The INSERT … SELECT that fills the send's recipient queue, idempotently."""
    recipients, params = _eligible_sql(send, filter_event, fire_at)
    params |= {"send": send.pk, "queued": SendRecipient.Status.QUEUED, "now": timezone.now()}
    columns = (
        "send_id, lead_id, phone_e164, limited_reporting, status, wamid, attempts, "
        "error_code, error_title, error_detail, skip_reason, claim_token, queued_at, updated_at"
    )
    select = (
        "SELECT %(send)s, r.id, r.phone_e164, r.limited_reporting, %(queued)s, '', 0, '', '', "
        f"'', '', '', %(now)s, %(now)s FROM ({recipients}) r"
    )
    table = SendRecipient._meta.db_table
    if connection.vendor == "postgresql":
        return (
            f"INSERT INTO {table} ({columns}) {select} ON CONFLICT (send_id, phone_e164) DO NOTHING"
        ), params
    return f"INSERT OR IGNORE INTO {table} ({columns}) {select}", params


def materialize_send(send_id: int, *, now: dt.datetime | None = None) -> MaterializeResult | None:
    """Fill the send's recipient queue once. None when another process holds or did it."""
    now = now or timezone.now()
    with transaction.atomic():
        send = (
            Send.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("campaign")
            .filter(pk=send_id, status=Send.Status.PENDING)
            .first()
        )
        if send is None:
            return None
        if send.campaign.status not in Campaign.ACTIVE_STATUSES:
            return MaterializeResult(send.pk, send.status, 0, "campaign is not scheduled")
        if send.scheduled_for < now - dt.timedelta(seconds=settings.SEND_MISSED_AFTER_SECONDS):
            reason = (
                f"Not sent: the fire time {send.scheduled_for:%Y-%m-%d %H:%M:%S} UTC passed more "
                f"than {settings.SEND_MISSED_AFTER_SECONDS // 60} minutes before the system "
                "could materialize it (was it down?)."
            )
            result = _finish(send, "miss", 0, reason, now)
            logger.warning(
                "send %s of campaign %s missed: %s",
                send.pk,
                send.campaign_id,
                reason,
                extra={"campaign_id": send.campaign_id, "send_id": send.pk},
            )
            return result

        filter_event = None
        if send.audience_filter_mode == Send.AudienceFilterMode.WEBHOOK_FILTERED:
            filter_event = _latest_filter_event(send)
            if filter_event is None:
                return _finish(send, "materialize", 0, NO_FILTER_EVENT_REASON, now)

        started = time.monotonic()
        sql, params = _insert_sql(send, filter_event, send.scheduled_for)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        count = SendRecipient.objects.filter(send=send).count()
        segments.refresh_sizes_after_commit(
            send.campaign.audiences.filter(source=Audience.Source.DYNAMIC).values_list(
                "pk", flat=True
            )
        )
        send.materialization_seconds = time.monotonic() - started
        result = _finish(send, "materialize", count, "", now)
    logger.info(
        "send %s of campaign %s materialized: %s recipients",
        send_id,
        send.campaign_id,
        count,
        extra={"campaign_id": send.campaign_id, "send_id": send_id, "recipients": count},
    )
    return result


def _finish(send: Send, action: str, count: int, reason: str, now) -> MaterializeResult:
    services.transition_send(
        send,
        action,
        reason=reason,
        now=now,
        recipient_count=count,
        materialization_seconds=send.materialization_seconds,
    )
    return MaterializeResult(send.pk, send.status, count, reason)


class PreviewMessage(NamedTuple):
    phone_e164: str
    parameters: list[str]
    text: str
    skipped: str = ""  # why the dispatcher would skip this recipient instead of sending


class SendPreview(NamedTuple):
    recipient_count: int
    limited_reporting_count: int
    sample: list[PreviewMessage]
    reason: str = ""


def _latest_filter_event(send: Send) -> AudienceFilterEvent | None:
    return send.filter_events.order_by("-received_at", "-id").first()


def preview_send(send: Send, *, sample_size: int = 10) -> SendPreview:
    """Who the send would reach if it materialized now, and what they would read.

    The dry run: the materializer's own rules as a SELECT, so the preview cannot drift
    from what firing would do. It writes nothing and calls no one.
    """
    filter_event = None
    if send.audience_filter_mode == Send.AudienceFilterMode.WEBHOOK_FILTERED:
        filter_event = _latest_filter_event(send)
        if filter_event is None:
            return SendPreview(0, 0, [], NO_FILTER_EVENT_REASON)
    recipients, params = _eligible_sql(send, filter_event, send.scheduled_for)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN r.limited_reporting THEN 1 ELSE 0 END), 0) "
            f"FROM ({recipients}) r",
            params,
        )
        count, limited = cursor.fetchone()
        cursor.execute(
            f"SELECT r.id FROM ({recipients}) r ORDER BY r.id LIMIT {int(sample_size)}", params
        )
        lead_ids = [row[0] for row in cursor.fetchall()]
    leads = Lead.objects.in_bulk(lead_ids)
    render_parameters = compile_parameters(send.parameter_mapping, sender=sender_of(send.campaign))
    sample = []
    for lead_id in lead_ids:
        lead = leads[lead_id]
        try:
            parameters = render_parameters(lead)
        except MissingParameter as missing:
            sample.append(PreviewMessage(lead.phone_e164, [], "", f"missing_parameter: {missing}"))
            continue
        text = render_body(send.template.body_text, parameters)
        sample.append(PreviewMessage(lead.phone_e164, parameters, text))
    return SendPreview(count, limited, sample)


def due_send_ids(now: dt.datetime | None = None) -> list[int]:
    """Pending sends of active campaigns whose materialization time has come."""
    now = now or timezone.now()
    horizon = now + dt.timedelta(seconds=settings.SEND_MATERIALIZE_AHEAD_SECONDS)
    return list(
        Send.objects.filter(
            status=Send.Status.PENDING,
            scheduled_for__lte=horizon,
            campaign__status__in=Campaign.ACTIVE_STATUSES,
        )
        .order_by("scheduled_for")
        .values_list("pk", flat=True)
    )


def materialize_due_sends(now: dt.datetime | None = None) -> list[MaterializeResult]:
    """Beat's entry point: materialize every due send; racing beats each claim different ones."""
    results = []
    for send_id in due_send_ids(now):
        result = materialize_send(send_id, now=now)
        if result is not None:
            results.append(result)
    return results
