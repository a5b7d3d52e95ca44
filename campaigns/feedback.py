"""Meta's delivery reports applied to the recipient queue, monotonically.

Statuses arrive out of order, in batches, and more than once. Each target status is one
conditional UPDATE that only moves rows forward (sent < delivered < read; failed only
before delivery), so a late `delivered` never overwrites `read`, a replay changes
nothing, and two webhooks racing on one row cannot lose an update.
"""

import datetime as dt
import logging
from typing import NamedTuple

from django.db.models import Q

from setter.ids import pk_from_text

from .models import Send, SendRecipient
from .recipient_sql import TABLE, update_recipients_from_rows

logger = logging.getLogger(__name__)
Status = SendRecipient.Status

# For each reported status: the statuses a row may move from.
_FORWARD_FROM = {
    Status.SENT: (Status.SENDING, Status.UNKNOWN),
    Status.DELIVERED: (Status.SENDING, Status.UNKNOWN, Status.SENT),
    Status.READ: (Status.SENDING, Status.UNKNOWN, Status.SENT, Status.DELIVERED),
    Status.FAILED: (Status.SENDING, Status.UNKNOWN, Status.SENT),
}
# Timestamps a status implies: `read` means delivered and sent too.
_IMPLIED_TIMES = {
    Status.SENT: ("sent_at",),
    Status.DELIVERED: ("sent_at", "delivered_at"),
    Status.READ: ("sent_at", "delivered_at", "read_at"),
    Status.FAILED: ("failed_at",),
}


class StatusUpdate(NamedTuple):
    phone_number_id: str
    wamid: str
    status: str
    timestamp: dt.datetime
    callback_data: str = ""
    error_code: str = ""
    error_title: str = ""
    error_detail: str = ""


def ingest_statuses(updates: list[StatusUpdate]) -> int:
    """Apply a batch of status reports; returns how many recipient rows moved."""
    updates = [u for u in updates if u.status in _FORWARD_FROM]
    if not updates:
        return 0
    resolved = _resolve_recipients(updates)
    changed = 0
    for status, sources in _FORWARD_FROM.items():
        rows = [
            (resolved[u], u.wamid, u.timestamp, u.error_code, u.error_title, u.error_detail)
            for u in updates
            if u.status == status and u in resolved
        ]
        times = ", ".join(
            f"{column} = COALESCE({TABLE}.{column}, v.at)" for column in _IMPLIED_TIMES[status]
        )
        errors = (
            ", error_code = v.code, error_title = v.title, error_detail = v.detail"
            if status == Status.FAILED
            else ""
        )
        allowed = ", ".join(f"'{s}'" for s in sources)
        changed += update_recipients_from_rows(
            ["id", "wamid", "at", "code", "title", "detail"],
            rows,
            f"status = '{status}', {times}{errors}, updated_at = %s, "
            f"wamid = CASE WHEN {TABLE}.wamid = '' THEN v.wamid ELSE {TABLE}.wamid END",
            f"{TABLE}.status IN ({allowed})",
            [dt.datetime.now(dt.UTC)],
        )
    return changed


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
            SendRecipient.objects.filter(Q(pk__in=ids) | (Q(wamid__in=wamids) & ~Q(wamid="")))
            .order_by()
            .values_list("pk", "wamid", "send_id")
        )
        ours = set(
            Send.objects.filter(
                pk__in={send_id for _, _, send_id in rows},
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
