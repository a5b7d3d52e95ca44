"""What each part of a Meta webhook delivery means for us.

Meta batches many entries and changes per POST and retries anything but a 2xx, so every
part is handled on its own: an unknown number or an odd change is logged and skipped,
never allowed to fail the rest of the delivery.
"""

import datetime as dt
import logging
from collections import Counter

from audiences.models import OptOut
from audiences.optouts import lift_marketing_opt_out, opt_out_marketing_from_meta, record_opt_out
from audiences.phones import canonical_or_normalized
from campaigns.feedback import StatusUpdate, ingest_statuses
from messaging.errors import recipient_verdict
from messaging.keywords import is_stop_message
from messaging.models import WhatsAppNumber
from messaging.services import apply_template_status_update

logger = logging.getLogger(__name__)


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def handle_delivery(payload) -> Counter:
    """Apply one webhook delivery; returns counts of what it did, for logs and tests."""
    counts: Counter = Counter()
    statuses: list[StatusUpdate] = []
    for entry in _list(_dict(payload).get("entry")):
        waba_id = str(_dict(entry).get("id", ""))
        for change in _list(_dict(entry).get("changes")):
            try:
                _handle_change(change, waba_id, statuses, counts)
            except (AttributeError, KeyError, TypeError, ValueError):
                logger.warning("malformed webhook change skipped", exc_info=True)
                counts["malformed"] += 1
    counts["statuses"] += ingest_statuses(statuses)
    return counts


def _handle_change(change, waba_id: str, statuses: list, counts: Counter) -> None:
    change = _dict(change)
    field, value = change.get("field"), _dict(change.get("value"))
    phone_number_id = str(_dict(value.get("metadata")).get("phone_number_id", ""))
    if field == "messages":
        statuses.extend(_status_updates(phone_number_id, _list(value.get("statuses"))))
        _handle_failures(phone_number_id, _list(value.get("statuses")), counts)
        _handle_messages(phone_number_id, _list(value.get("messages")), counts)
    elif field == "user_preferences":
        _handle_preferences(phone_number_id, _list(value.get("user_preferences")), counts)
    elif field == "message_template_status_update":
        counts["template_updates"] += apply_template_status_update(value, waba_id=waba_id)
    else:
        counts["ignored"] += 1


def _timestamp(value) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(value), tz=dt.UTC)


def _status_updates(phone_number_id: str, statuses: list) -> list[StatusUpdate]:
    updates = []
    for status in map(_dict, statuses):
        error = _dict((_list(status.get("errors")) or [{}])[0])
        updates.append(
            StatusUpdate(
                phone_number_id=phone_number_id,
                wamid=str(status.get("id", "")),
                status=str(status.get("status", "")),
                timestamp=_timestamp(status.get("timestamp", 0)),
                callback_data=str(status.get("biz_opaque_callback_data", "")),
                error_code=str(error.get("code", "")),
                error_title=str(error.get("title", ""))[:255],
                error_detail=str(_dict(error.get("error_data")).get("details", "")),
            )
        )
    return updates


def _handle_failures(phone_number_id: str, statuses: list, counts: Counter) -> None:
    """A `failed` status whose error means more than one lost message (131050: the user
    stopped marketing) is acted on like the same error in a send answer."""
    stopped = set()
    for status in map(_dict, statuses):
        if status.get("status") != "failed":
            continue
        to = str(status.get("recipient_id", ""))
        for error in map(_dict, _list(status.get("errors"))):
            if recipient_verdict(error.get("code"), to).opts_out_marketing:
                stopped.add(_phone(to))
    stopped.discard("")
    if not stopped:
        return
    organization_id = _organization_of(phone_number_id)
    if organization_id is not None:
        counts["opt_outs"] += opt_out_marketing_from_meta(organization_id, stopped)


def _organization_of(phone_number_id: str) -> int | None:
    organization_id = (
        WhatsAppNumber.objects.filter(phone_number_id=phone_number_id)
        .values_list("organization_id", flat=True)
        .first()
    )
    if organization_id is None:
        logger.warning("webhook for an unknown number", extra={"phone_number_id": phone_number_id})
    return organization_id


def _phone(wa_id) -> str:
    return canonical_or_normalized("+" + str(wa_id).lstrip("+"))


def _handle_messages(phone_number_id: str, messages: list, counts: Counter) -> None:
    stops = [
        m
        for m in messages
        if m.get("type") == "text" and is_stop_message((m.get("text") or {}).get("body"))
    ]
    if not stops:
        return
    organization_id = _organization_of(phone_number_id)
    if organization_id is None:
        return
    for message in stops:
        phone = _phone(message.get("from", ""))
        if phone and record_opt_out(
            organization_id, phone, scope=OptOut.Scope.ALL, source=OptOut.Source.KEYWORD
        ):
            counts["opt_outs"] += 1


def _handle_preferences(phone_number_id: str, preferences: list, counts: Counter) -> None:
    organization_id = _organization_of(phone_number_id)
    if organization_id is None:
        return
    for preference in map(_dict, preferences):
        if preference.get("category") != "marketing_messages":
            continue
        phone = _phone(preference.get("wa_id", ""))
        if not phone:
            continue
        if preference.get("value") == "stop":
            record_opt_out(
                organization_id,
                phone,
                scope=OptOut.Scope.MARKETING,
                source=OptOut.Source.META_PREFERENCE,
            )
            counts["opt_outs"] += 1
        elif preference.get("value") == "resume":
            counts["opt_ins"] += lift_marketing_opt_out(organization_id, phone)
