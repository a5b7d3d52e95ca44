"""What each part of a Meta webhook delivery means for us.

Meta batches many entries and changes per POST and retries anything but a 2xx, so every
part is handled on its own: an unknown number or an odd change is logged and skipped,
never allowed to fail the rest of the delivery.
"""

import datetime as dt
import logging
import re
from collections import Counter

from audiences.models import OptOut
from audiences.optouts import lift_marketing_opt_out, record_opt_out
from campaigns.feedback import StatusUpdate, ingest_statuses
from campaigns.models import SendRecipient
from campaigns.quality_guard import pause_for_stop_bursts
from campaigns.testsends import ingest_test_statuses
from messaging.keywords import is_stop_message
from messaging.models import WhatsAppNumber
from messaging.services import apply_quality_update, apply_template_status_update
from setter.instants import in_supported_range
from setter.phones import canonical_or_normalized
from webhooks.services import record_rejected_statuses

logger = logging.getLogger(__name__)
# Counts of refused status reports are `rejected:<field>` in a delivery's Counter.
REJECTED_PREFIX = "rejected:"


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
    test_sends_moved, statuses = ingest_test_statuses(statuses)
    counts["test_sends"] += test_sends_moved
    ingested = ingest_statuses(statuses)
    counts["statuses"] += ingested.moved
    counts["opt_outs"] += ingested.opt_outs
    record_rejected_statuses(
        {
            key.removeprefix(REJECTED_PREFIX): n
            for key, n in counts.items()
            if key.startswith(REJECTED_PREFIX)
        }
    )
    return counts


def _handle_change(change, waba_id: str, statuses: list, counts: Counter) -> None:
    change = _dict(change)
    field, value = change.get("field"), _dict(change.get("value"))
    phone_number_id = str(_dict(value.get("metadata")).get("phone_number_id", ""))
    if field == "messages":
        statuses.extend(_status_updates(phone_number_id, _list(value.get("statuses")), counts))
        _handle_messages(phone_number_id, _list(value.get("messages")), counts)
    elif field == "user_preferences":
        _handle_preferences(phone_number_id, _list(value.get("user_preferences")), counts)
    elif field == "message_template_status_update":
        counts["template_updates"] += apply_template_status_update(value, waba_id=waba_id)
    elif field == "phone_number_quality_update":
        update = apply_quality_update(value, waba_id=waba_id)
        counts["quality_updates"] += update is not None
        counts["paused_sends"] += len(update.paused_sends) if update else 0
    else:
        counts["ignored"] += 1


class BadStatus(ValueError):
    """A status report we cannot apply as sent; `field` names the offending part."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field


_WAMID_MAX_LENGTH = SendRecipient._meta.get_field("wamid").max_length
_ERROR_CODE_MAX_LENGTH = SendRecipient._meta.get_field("error_code").max_length
_ERROR_TITLE_MAX_LENGTH = SendRecipient._meta.get_field("error_title").max_length
# Meta's own cap on biz_opaque_callback_data.
_CALLBACK_DATA_MAX_LENGTH = 512


def _text(value, field: str, max_length: int | None = None) -> str:
    """A string Meta sent, refused if the column cannot hold it exactly."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadStatus(field, f"expected a string, got {type(value).__name__}")
    text = str(value)
    if "\x00" in text:
        raise BadStatus(field, "contains a NUL character")
    if max_length is not None and len(text) > max_length:
        raise BadStatus(field, f"longer than {max_length} characters")
    return text


def _timestamp(value) -> dt.datetime:
    """Unix seconds, as a string (Meta's form) or a number, in the years 1970–9000."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadStatus("timestamp", "expected unix seconds")
    if isinstance(value, str) and not _UNIX_SECONDS.fullmatch(value):
        raise BadStatus("timestamp", "expected unix seconds")
    try:
        moment = dt.datetime.fromtimestamp(int(value), tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise BadStatus("timestamp", "out of range") from None
    if not in_supported_range(moment):
        raise BadStatus("timestamp", "outside the years 1970–9000")
    return moment


_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def _status_update(phone_number_id: str, status) -> StatusUpdate:
    """One status report as we store it, or BadStatus naming the field we cannot store."""
    if not isinstance(status, dict):
        raise BadStatus("status", "expected an object")
    name = _text(status.get("status"), "status", 32)
    fields = {}
    if name == "failed":
        errors = status.get("errors")
        error = errors[0] if isinstance(errors, list) and errors else {}
        if not isinstance(error, dict):
            raise BadStatus("errors", "expected a list of objects")
        details = error.get("error_data")
        fields = {
            "error_code": _text(error.get("code"), "errors.code", _ERROR_CODE_MAX_LENGTH),
            "error_title": _text(error.get("title"), "errors.title", _ERROR_TITLE_MAX_LENGTH),
            "error_detail": _text(
                details.get("details") if isinstance(details, dict) else None,
                "errors.error_data.details",
            ),
        }
    return StatusUpdate(
        phone_number_id=phone_number_id,
        wamid=_text(status.get("id"), "id", _WAMID_MAX_LENGTH),
        status=name,
        timestamp=_timestamp(status.get("timestamp")),
        callback_data=_text(
            status.get("biz_opaque_callback_data"),
            "biz_opaque_callback_data",
            _CALLBACK_DATA_MAX_LENGTH,
        ),
        **fields,
    )


def _status_updates(phone_number_id: str, statuses: list, counts: Counter) -> list[StatusUpdate]:
    """Every report that can be applied; each bad one is logged and counted by field, and
    the others go on."""
    updates = []
    for status in statuses:
        try:
            updates.append(_status_update(phone_number_id, status))
        except BadStatus as bad:
            logger.warning(
                "bad webhook status skipped",
                extra={"phone_number_id": phone_number_id, "field": bad.field, "problem": str(bad)},
            )
            counts[f"{REJECTED_PREFIX}{bad.field}"] += 1
    return updates


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
    new_stops = 0
    for message in stops:
        phone = _phone(message.get("from", ""))
        if phone and record_opt_out(
            organization_id, phone, scope=OptOut.Scope.ALL, source=OptOut.Source.KEYWORD
        ):
            new_stops += 1
    counts["opt_outs"] += new_stops
    if new_stops:
        counts["paused_sends"] += len(pause_for_stop_bursts(organization_id))


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
