"""Meta's delivery reports applied to the recipient queue, monotonically.

Statuses arrive out of order, in batches, and more than once. Each target status is one
conditional UPDATE, a `report_*` transition of the recipient machine (campaigns.recipients)
that only moves rows forward (sent < delivered < read; failed only before delivery), so a
late `delivered` never overwrites `read`, a replay changes nothing, and two webhooks racing
on one row cannot lose an update.
"""

import datetime as dt
import logging
from typing import NamedTuple

from django.db.models import Q

from audiences.optouts import opt_out_marketing_from_meta
from audiences.services import mark_ineligible_geo
from messaging.errors import RecipientVerdict, recipient_verdict
from setter.ids import pk_from_text

from .models import Send, SendRecipient
from .recipient_sql import TABLE
from .recipients import IMPLIED_TIMES, REPORTED_STATUS_TRANSITIONS, transition_rows

logger = logging.getLogger(__name__)
Status = SendRecipient.Status


class StatusUpdate(NamedTuple):
    phone_number_id: str
    wamid: str
    status: str
    timestamp: dt.datetime
    callback_data: str = ""
    error_code: str = ""
    error_title: str = ""
    error_detail: str = ""


class Ingested(NamedTuple):
    moved: int  # recipient rows that moved forward
    opt_outs: int  # new marketing opt-outs the failures' verdicts made


def ingest_statuses(updates: list[StatusUpdate]) -> Ingested:
    """Apply a batch of status reports, and act on the verdict of each failure."""
    updates = [u for u in updates if u.status in REPORTED_STATUS_TRANSITIONS]
    if not updates:
        return Ingested(0, 0)
    resolved = _resolve_recipients(updates)
    changed = 0
    for status, report in REPORTED_STATUS_TRANSITIONS.items():
        rows = [
            (resolved[u], u.wamid, u.timestamp, u.error_code, u.error_title, u.error_detail)
            for u in updates
            if u.status == status and u in resolved
        ]
        times = ", ".join(
            f"{column} = COALESCE({TABLE}.{column}, v.at)" for column in IMPLIED_TIMES[status]
        )
        errors = (
            ", error_code = v.code, error_title = v.title, error_detail = v.detail"
            if status == Status.FAILED
            else ""
        )
        changed += transition_rows(
            report,
            ["id", "wamid", "at", "code", "title", "detail"],
            rows,
            f"{times}{errors}, "
            f"wamid = CASE WHEN {TABLE}.wamid = '' THEN v.wamid ELSE {TABLE}.wamid END",
        )
    return Ingested(changed, act_on_verdicts(_failure_verdicts(updates, resolved)))


def _failure_verdicts(
    updates: list[StatusUpdate], resolved: dict[StatusUpdate, int]
) -> dict[int, RecipientVerdict]:
    """The verdict on each reported failure, for the phone the message went to: decided as
    for the same code in a send answer. A replayed or late failure is judged again (the
    verdict is about the person, not the row, and acting on it twice changes nothing)."""
    failed = {
        resolved[u]: u.error_code for u in updates if u.status == Status.FAILED and u in resolved
    }
    phones = dict(SendRecipient.objects.filter(pk__any=failed).values_list("pk", "phone_e164"))
    return {pk: recipient_verdict(code, phones[pk]) for pk, code in failed.items()}


def act_on_verdicts(verdicts: dict[int, RecipientVerdict]) -> int:
    """What Meta's failure of a message means beyond it (messaging.errors.recipient_verdict),
    done the same whether the send answer or a `failed` status webhook said it: the phone
    opts out of its organization's marketing (131050); the lead is marked ineligible_geo so no
    later MARKETING send tries it (131049 to a US number). `verdicts` are keyed by recipient
    id. Returns how many opt-outs are new."""
    opting_out = [pk for pk, verdict in verdicts.items() if verdict.opts_out_marketing]
    blocked = [pk for pk, verdict in verdicts.items() if verdict.ineligible_geo]
    created = 0
    if opting_out:
        phones_by_organization: dict[int, list[str]] = {}
        rows = SendRecipient.objects.filter(pk__in=opting_out).values_list(
            "send__campaign__organization_id", "phone_e164"
        )
        for organization_id, phone in rows:
            phones_by_organization.setdefault(organization_id, []).append(phone)
        for organization_id, phones in phones_by_organization.items():
            created += opt_out_marketing_from_meta(organization_id, phones)
    if blocked:
        mark_ineligible_geo(SendRecipient.objects.filter(pk__in=blocked).values("lead_id"))
    return created


def _resolve_recipients(updates: list[StatusUpdate]) -> dict[StatusUpdate, int]:
    """Recipient id per update: by our callback data (the recipient id) or by wamid, and
    only among sends from the number the report came for, so a report can never touch
    another organization's rows."""
    by_number: dict[str, list[StatusUpdate]] = {}
    for update in updates:
        by_number.setdefault(update.phone_number_id, []).append(update)
    resolved = {}
    for phone_number_id, group in by_number.items():
        ids = {pk for u in group if (pk := pk_from_text(u.callback_data)) is not None}
        wamids = {u.wamid for u in group if u.wamid}
        # Two index lookups, the rows then their sends: joined in one query, the planner
        # ANDs in the number's sends' whole (send_id, …) index range, a million entries for
        # a large send. `wamid` repeats recipient_wamid's condition so it may use that index.
        rows = list(
            SendRecipient.objects.filter(Q(pk__any=ids) | (Q(wamid__any=wamids) & ~Q(wamid="")))
            .order_by()
            .values_list("pk", "wamid", "send_id")
        )
        ours = set(
            Send.objects.filter(
                pk__any={send_id for _, _, send_id in rows},
                campaign__whatsapp_number__phone_number_id=phone_number_id,
            ).values_list("pk", flat=True)
        )
        known_ids = set()
        by_wamid = {}
        for pk, wamid, send_id in rows:
            if send_id not in ours:
                continue
            known_ids.add(pk)
            if wamid:
                by_wamid[wamid] = pk
        for update in group:
            callback_id = pk_from_text(update.callback_data)
            if callback_id in known_ids:
                resolved[update] = callback_id
            elif update.wamid in by_wamid:
                resolved[update] = by_wamid[update.wamid]
            else:
                logger.info(
                    "status for an unknown message",
                    extra={"wamid": update.wamid, "phone_number_id": phone_number_id},
                )
    return resolved
