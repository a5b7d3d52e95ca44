"""The recipient queue's state machine: every status change of a recipient, the send engine's
and Meta's reports (campaigns.feedback) alike, is one of RECIPIENT_TRANSITIONS.

    queued ──claim──▶ claimed ──mark_sending──▶ sending ──answer_*──▶ sent | failed | unknown
      ▲                 │  (lease expired,          │  (answer: retry)       (queued again)
      └──── release ────┘   or handed back)         └── lease expired: lose ──▶ unknown
    queued | claimed ──skip──▶ skipped (cancelled, stopped, opted out, missing parameter)
    failed ──requeue_failed──▶ queued (a retry wave of the completed send: campaigns.retries)
    sending | unknown | sent | delivered ──report_*──▶ sent < delivered < read; failed

A claimed row is held under a lease by one dispatcher and has not been handed to the HTTP
client: if its holder dies it goes back to the queue, since it was never sent. A row becomes
`sending` only just before its request leaves, so after a crash the rows that become
`unknown` are at most the requests that were in flight. Every write is conditional on the
statuses its transition moves from (and for a holder's writes, its claim token), so a status
webhook, a stop or a recovery that got there first is never undone: rows that moved on are
left alone, by design, and the count moved says how many did not.
"""

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import NamedTuple

import orjson
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from messaging.errors import RecipientVerdict

from .models import SendRecipient
from .recipient_sql import JSON_VALUE, TABLE, update_recipients_from_rows

Status = SendRecipient.Status
SkipReason = SendRecipient.SkipReason


class RecipientTransitionError(Exception):
    """A recipient status change the table does not name: a bug in its caller."""


@dataclass(frozen=True)
class RecipientTransition:
    sources: tuple[str, ...]
    target: str

    @property
    def allowed(self) -> str:
        """SQL: the row's status is one this transition moves from."""
        sources = ", ".join(f"'{source}'" for source in self.sources)
        return f"{TABLE}.status IN ({sources})"


RECIPIENT_TRANSITIONS: dict[str, RecipientTransition] = {
    # The dispatcher's: a row is claimed, put on the wire, answered.
    "claim": RecipientTransition((Status.QUEUED,), Status.CLAIMED),
    "release": RecipientTransition((Status.CLAIMED,), Status.QUEUED),  # never left
    "mark_sending": RecipientTransition((Status.CLAIMED,), Status.SENDING),
    "retry": RecipientTransition((Status.SENDING,), Status.QUEUED),  # try later, or handed back
    "lose": RecipientTransition((Status.SENDING,), Status.UNKNOWN),  # no answer: never resent
    "answer_sent": RecipientTransition(SendRecipient.IN_FLIGHT_STATUSES, Status.SENT),
    "answer_failed": RecipientTransition(SendRecipient.IN_FLIGHT_STATUSES, Status.FAILED),
    # A stop, a cancel, an opt-out or a missing parameter: never on the wire (in flight: a
    # stop caught the row between its slot and its request, or before its retry).
    "skip": RecipientTransition(SendRecipient.UNSENT_STATUSES, Status.SKIPPED),
    "skip_in_flight": RecipientTransition((Status.SENDING,), Status.SKIPPED),
    # The marketer retries a completed send's failures: a new message, a fresh row.
    "requeue_failed": RecipientTransition((Status.FAILED,), Status.QUEUED),
    # Meta's status reports, forward only: a late `delivered` never overwrites `read`.
    "report_sent": RecipientTransition(SendRecipient.IN_FLIGHT_STATUSES, Status.SENT),
    "report_delivered": RecipientTransition(
        (*SendRecipient.IN_FLIGHT_STATUSES, Status.SENT), Status.DELIVERED
    ),
    "report_read": RecipientTransition(
        (*SendRecipient.IN_FLIGHT_STATUSES, Status.SENT, Status.DELIVERED), Status.READ
    ),
    "report_failed": RecipientTransition(
        (*SendRecipient.IN_FLIGHT_STATUSES, Status.SENT), Status.FAILED
    ),
}

# Meta's reports (feedback and test sends alike): the transition each reported status is.
REPORTED_STATUS_TRANSITIONS = {
    Status.SENT: "report_sent",
    Status.DELIVERED: "report_delivered",
    Status.READ: "report_read",
    Status.FAILED: "report_failed",
}
# Timestamps a status implies: `read` means delivered and sent too.
IMPLIED_TIMES = {
    Status.SENT: ("sent_at",),
    Status.DELIVERED: ("sent_at", "delivered_at"),
    Status.READ: ("sent_at", "delivered_at", "read_at"),
    Status.FAILED: ("failed_at",),
}


def _rule(verb: str) -> RecipientTransition:
    rule = RECIPIENT_TRANSITIONS.get(verb)
    if rule is None:
        raise RecipientTransitionError(f"Unknown recipient transition {verb!r}")
    return rule


def transition(verb: str, rows: QuerySet, **changes) -> int:
    """Move those of `rows` whose status the transition allows, writing `changes` with the
    status. Returns how many moved."""
    if "status" in changes:
        raise RecipientTransitionError("A transition's target is its table's, not the caller's")
    rule = _rule(verb)
    changes = {"updated_at": timezone.now(), **changes, "status": rule.target}
    return rows.filter(status__in=rule.sources).update(**changes)


def transition_rows(
    verb: str,
    columns: Sequence[str],
    rows: Sequence[tuple],
    assignments: str,
    condition: str = "TRUE",
    params: Sequence = (),
    *,
    others_too: bool = False,
    returning: bool = False,
):
    """transition() for per-row values in one statement (campaigns.recipient_sql): the rows
    (id first) whose status the transition allows move, with `assignments`. With `others_too`
    the assignments are written to every row and only the status is conditional (an answer
    that a status webhook overtook keeps the webhook's status)."""
    rule = _rule(verb)
    if others_too:
        status = f"CASE WHEN {rule.allowed} THEN '{rule.target}' ELSE {TABLE}.status END"
        condition_sql = condition
    else:
        status = f"'{rule.target}'"
        condition_sql = f"{rule.allowed} AND {condition}"
    return update_recipients_from_rows(
        columns,
        rows,
        f"status = {status}, updated_at = %s, {assignments}",
        condition_sql,
        [timezone.now(), *params],
        returning=returning,
    )


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt came to. `kind`: sent | retry | requeue | failed | unknown.
    `answered`: Meta answered (counts towards the number's throughput adaptation);
    `refused`: the answer was a 130429."""

    recipient_id: int
    kind: str
    at: dt.datetime | None = None  # when Meta answered
    wamid: str = ""
    error_code: str = ""
    error_title: str = ""
    error_detail: str = ""
    retry_at: dt.datetime | None = None
    answered: bool = False
    refused: bool = False
    verdict: RecipientVerdict = RecipientVerdict()  # what a failure means beyond this message
    permanent: bool = False  # a recipient-permanent failure (the quality guard counts them)


class ClaimedRow(NamedTuple):
    """A claimed row as the dispatcher reads it: plain values, not model instances, and its
    lead's columns the claim asked for (None when the lead is gone). At a claim's hundreds
    of rows, building a recipient and a lead instance for each was a tenth of a dispatching
    worker's time (issue 17.2)."""

    pk: int
    phone_e164: str
    attempts: int
    lead: SimpleNamespace | None


def claim(
    send_id: int, token: str, size: int, lease_seconds: float, lead_fields: Sequence[str]
) -> list[ClaimedRow]:
    """Up to `size` due queued rows of the send, in id order, now held by `token` under a
    lease: each with its attempts so far and its lead's `lead_fields`."""
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            SendRecipient.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(send_id=send_id, status__in=RECIPIENT_TRANSITIONS["claim"].sources)
            .exclude(next_attempt_at__gt=now)
            .order_by("id")
            .values_list(
                "id", "phone_e164", "attempts", "lead_id", *(f"lead__{f}" for f in lead_fields)
            )[:size]
        )
        transition(
            "claim",
            SendRecipient.objects.filter(pk__any=[row[0] for row in rows]),
            claim_token=token,
            lease_expires_at=now + dt.timedelta(seconds=lease_seconds),
            updated_at=now,
        )
    return [
        ClaimedRow(
            pk,
            phone,
            attempts,
            SimpleNamespace(**dict(zip(lead_fields, columns, strict=True)))
            if lead_id is not None
            else None,
        )
        for pk, phone, attempts, lead_id, *columns in rows
    ]


def mark_sending(token: str, rows: Sequence[tuple[int, list[str]]]) -> set[int]:
    """Claimed rows about to go on the wire become `sending` (an attempt is counted), each
    with the body parameters its request carries (id, parameters): what the recipient list
    shows as the message. Returns the ids that did: a row a stop skipped meanwhile is no
    longer the holder's to send."""
    return transition_rows(
        "mark_sending",
        ["id", "parameters"],
        [(pk, orjson.dumps(parameters).decode()) for pk, parameters in rows],
        f"attempts = attempts + 1, parameters = {JSON_VALUE.format('v.parameters')}",
        f"{TABLE}.claim_token = %s",
        [token],
        returning=True,
    )


def renew(send_id: int, token: str, lease_seconds: float) -> None:
    """The holder is alive: its claimed and sending rows keep their lease."""
    now = timezone.now()
    SendRecipient.objects.filter(
        send_id=send_id, status__in=(Status.CLAIMED, Status.SENDING), claim_token=token
    ).update(lease_expires_at=now + dt.timedelta(seconds=lease_seconds))


def release(token: str, ids: Iterable[int], skip_reason: str = "") -> None:
    """Claimed rows the holder will not send: back to the queue, or skipped with a reason."""
    ids = list(ids)
    if not ids:
        return
    rows = SendRecipient.objects.filter(pk__any=ids, claim_token=token)
    if skip_reason:
        transition("skip", rows, **_skipped(skip_reason))
    else:
        transition("release", rows, claim_token="", lease_expires_at=None)


def defer(token: str, until: dict[int, dt.datetime]) -> None:
    """Claimed rows the holder may not send yet (a send window closed in their zone): back
    to the queue, each not due before its instant. One write per distinct instant (per zone)."""
    by_instant: dict[dt.datetime, list[int]] = {}
    for pk, instant in until.items():
        by_instant.setdefault(instant, []).append(pk)
    for instant, ids in by_instant.items():
        rows = SendRecipient.objects.filter(pk__any=ids, claim_token=token)
        transition("release", rows, claim_token="", lease_expires_at=None, next_attempt_at=instant)


def skip(ids: Iterable[int], reason: str, *, holder: str) -> None:
    """Rows the holder found it must not send (opted out, a parameter would be empty)."""
    ids = list(ids)
    if ids:
        rows = SendRecipient.objects.filter(pk__any=ids, claim_token=holder)
        transition("skip", rows, **_skipped(reason))


def skip_unsent(send_ids, reason: str) -> int:
    """A cancel or a stop: every row of the sends not yet on the wire is skipped, whoever
    holds it (a holder's later mark_sending finds it gone). Rows in flight keep their course."""
    return transition(
        "skip", SendRecipient.objects.filter(send_id__in=send_ids), **_skipped(reason)
    )


def requeue_failed(ids: Sequence[int], wave: int, new_leads: dict[int, int]) -> int:
    """Failed rows queued again as wave `wave`: what the last attempt left (its error,
    times, wamid, parameters, attempts) is cleared, so the row is a new message; a late
    report for the old wamid finds nothing. `new_leads` (row id → lead id) names the rows
    whose lead changed since (theirs was deleted; the phone's lowest lead now stands for
    it). Returns how many moved (a row no longer failed is left alone)."""
    fresh = {
        "wave": wave,
        "wamid": "",
        "attempts": 0,
        "next_attempt_at": None,
        "error_code": "",
        "error_title": "",
        "error_detail": "",
        "parameters": None,
        "claim_token": "",
        "lease_expires_at": None,
        "queued_at": timezone.now(),
        "sent_at": None,
        "delivered_at": None,
        "read_at": None,
        "failed_at": None,
    }
    moved = 0
    with transaction.atomic():
        for pk, lead_id in new_leads.items():
            SendRecipient.objects.filter(pk=pk, status=Status.FAILED).update(lead_id=lead_id)
        for start in range(0, len(ids), 5_000):
            chunk = SendRecipient.objects.filter(pk__any=ids[start : start + 5_000])
            moved += transition("requeue_failed", chunk, **fresh)
    return moved


def _skipped(reason: str) -> dict:
    return {"skip_reason": reason, "error_title": SkipReason(reason).label}


def recover_expired(
    now: dt.datetime | None = None, *, send_id: int | None = None
) -> tuple[int, int]:
    """Rows whose holder stopped renewing its lease (its worker died): claimed ones go back
    to the queue, never having left; sending ones become `unknown`, since their message may
    have left and must never be sent twice. Returns (requeued, unknown)."""
    now = now or timezone.now()
    expired = SendRecipient.objects.filter(lease_expires_at__lt=now)
    if send_id is not None:
        expired = expired.filter(send_id=send_id)
    requeued = transition("release", expired, claim_token="", lease_expires_at=None, updated_at=now)
    lost = transition(
        "lose",
        expired,
        error_title="The worker sending it stopped before Meta answered.",
        lease_expires_at=None,
        updated_at=now,
    )
    return requeued, lost


def record(outcomes: Sequence[Outcome], *, stop_reason: str = "") -> None:
    """Write a group of attempts' outcomes in one transaction. Rows handed back before their
    request left (`requeue`) return to the queue, or are skipped when the send was stopped."""
    now = timezone.now()
    by_kind: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_kind.setdefault(outcome.kind, []).append(outcome)
    with transaction.atomic():
        # A status webhook may already have moved the row past `sent`: keep its status.
        transition_rows(
            "answer_sent",
            ["id", "wamid", "at"],
            [(o.recipient_id, o.wamid, o.at) for o in by_kind.get("sent", [])],
            f"wamid = v.wamid, sent_at = COALESCE({TABLE}.sent_at, v.at), lease_expires_at = NULL",
            others_too=True,
        )
        retries = by_kind.get("retry", [])
        if stop_reason:
            _skip_in_flight([o.recipient_id for o in retries], stop_reason)
        else:
            transition_rows(
                "retry",
                ["id", "retry_at", "code", "title"],
                [(o.recipient_id, o.retry_at, o.error_code, o.error_title) for o in retries],
                "next_attempt_at = v.retry_at, error_code = v.code, error_title = v.title, "
                "claim_token = '', lease_expires_at = NULL",
            )
        lost = [o.recipient_id for o in by_kind.get("unknown", [])]
        if lost:
            transition(
                "lose",
                SendRecipient.objects.filter(pk__any=lost),
                error_title="No answer from Meta.",
                lease_expires_at=None,
                updated_at=now,
            )
        handed_back = [o.recipient_id for o in by_kind.get("requeue", [])]
        if stop_reason:
            _skip_in_flight(handed_back, stop_reason)
        elif handed_back:
            transition(
                "retry",
                SendRecipient.objects.filter(pk__any=handed_back),
                attempts=F("attempts") - 1,
                claim_token="",
                lease_expires_at=None,
                updated_at=now,
            )
        transition_rows(
            "answer_failed",
            ["id", "code", "title", "detail"],
            [
                (o.recipient_id, o.error_code, o.error_title, o.error_detail)
                for o in by_kind.get("failed", [])
            ],
            "error_code = v.code, error_title = v.title, error_detail = v.detail, "
            "failed_at = %s, lease_expires_at = NULL",
            params=[now],
        )


def _skip_in_flight(ids: list[int], reason: str) -> None:
    """Rows whose request never left (or must not be retried) when the send was stopped."""
    if ids:
        rows = SendRecipient.objects.filter(pk__any=ids)
        transition("skip_in_flight", rows, **_skipped(reason))
