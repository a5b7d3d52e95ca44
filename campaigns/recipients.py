"""The recipient queue's state machine: every status change the send engine makes.

    queued ──claim──▶ claimed ──mark_sending──▶ sending ──record──▶ sent | failed | unknown
      ▲                 │  (lease expired,          │  (answer: retry)       (queued again)
      └──── release ────┘   or handed back)         └── lease expired ──▶ unknown
    queued | claimed ──skip──▶ skipped (cancelled, stopped, opted out, missing parameter)

A claimed row is held under a lease by one dispatcher and has not been handed to the HTTP
client: if its holder dies it goes back to the queue, since it was never sent. A row becomes
`sending` only just before its request leaves, so after a crash the rows that become
`unknown` are at most the requests that were in flight. Every write is conditional on the
status (and for a holder's writes, its claim token) it expects, so a status webhook, a stop
or a recovery that got there first is never undone. Meta's own reports (sent → delivered →
read) move rows forward in campaigns.feedback.
"""

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from messaging.errors import RecipientVerdict

from .models import SendRecipient
from .recipient_sql import TABLE, update_recipients_from_rows

Status = SendRecipient.Status
SkipReason = SendRecipient.SkipReason


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


def claim(send_id: int, token: str, size: int, lease_seconds: float) -> list[SendRecipient]:
    """Up to `size` due queued rows of the send, now held by `token` under a lease."""
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            SendRecipient.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("lead")
            .filter(send_id=send_id, status=Status.QUEUED)
            .exclude(next_attempt_at__gt=now)
            .order_by("id")[:size]
        )
        if rows:
            SendRecipient.objects.filter(pk__in=[r.pk for r in rows]).update(
                status=Status.CLAIMED,
                claim_token=token,
                lease_expires_at=now + dt.timedelta(seconds=lease_seconds),
                updated_at=now,
            )
    return rows


def mark_sending(token: str, ids: Sequence[int]) -> set[int]:
    """Claimed rows about to go on the wire become `sending` (an attempt is counted). Returns
    the ids that did: a row a stop skipped meanwhile is no longer the holder's to send."""
    if not ids:
        return set()
    placeholders = ", ".join(["%s"] * len(ids))
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET status = %s, attempts = attempts + 1, updated_at = %s "
            f"WHERE id IN ({placeholders}) AND status = %s AND claim_token = %s RETURNING id",
            [Status.SENDING, now, *ids, Status.CLAIMED, token],
        )
        return {row[0] for row in cursor.fetchall()}


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
    rows = SendRecipient.objects.filter(pk__in=ids, status=Status.CLAIMED, claim_token=token)
    if skip_reason:
        rows.update(**_skipped(skip_reason))
    else:
        rows.update(status=Status.QUEUED, claim_token="", lease_expires_at=None)


def skip(ids: Iterable[int], reason: str, *, holder: str) -> None:
    """Rows the holder found it must not send (opted out, a parameter would be empty)."""
    ids = list(ids)
    if ids:
        SendRecipient.objects.filter(pk__in=ids, status=Status.CLAIMED, claim_token=holder).update(
            **_skipped(reason)
        )


def skip_unsent(send_ids, reason: str) -> int:
    """A cancel or a stop: every row of the sends not yet on the wire is skipped, whoever
    holds it (a holder's later mark_sending finds it gone). Rows in flight keep their course."""
    return SendRecipient.objects.filter(
        send_id__in=send_ids, status__in=SendRecipient.UNSENT_STATUSES
    ).update(**_skipped(reason))


def _skipped(reason: str) -> dict:
    return {
        "status": Status.SKIPPED,
        "skip_reason": reason,
        "error_title": SkipReason(reason).label,
        "updated_at": timezone.now(),
    }


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
    requeued = expired.filter(status=Status.CLAIMED).update(
        status=Status.QUEUED, claim_token="", lease_expires_at=None, updated_at=now
    )
    lost = expired.filter(status=Status.SENDING).update(
        status=Status.UNKNOWN,
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
    in_flight = f"{TABLE}.status IN ('{Status.SENDING}', '{Status.UNKNOWN}')"
    with transaction.atomic():
        # A status webhook may already have moved the row past `sent`: keep its status.
        update_recipients_from_rows(
            ["id", "wamid", "at"],
            [(o.recipient_id, o.wamid, o.at) for o in by_kind.get("sent", [])],
            f"wamid = v.wamid, sent_at = COALESCE({TABLE}.sent_at, v.at), updated_at = %s, "
            f"lease_expires_at = NULL, "
            f"status = CASE WHEN {in_flight} THEN '{Status.SENT}' ELSE {TABLE}.status END",
            "1 = 1",
            [now],
        )
        retries = by_kind.get("retry", [])
        if stop_reason:
            _skip_sending([o.recipient_id for o in retries], stop_reason)
        else:
            update_recipients_from_rows(
                ["id", "retry_at", "code", "title"],
                [(o.recipient_id, o.retry_at, o.error_code, o.error_title) for o in retries],
                f"status = '{Status.QUEUED}', next_attempt_at = v.retry_at, updated_at = %s, "
                "error_code = v.code, error_title = v.title, claim_token = '', "
                "lease_expires_at = NULL",
                f"{TABLE}.status = '{Status.SENDING}'",
                [now],
            )
        lost = [o.recipient_id for o in by_kind.get("unknown", [])]
        if lost:
            SendRecipient.objects.filter(pk__in=lost, status=Status.SENDING).update(
                status=Status.UNKNOWN,
                error_title="No answer from Meta.",
                lease_expires_at=None,
                updated_at=now,
            )
        handed_back = [o.recipient_id for o in by_kind.get("requeue", [])]
        if stop_reason:
            _skip_sending(handed_back, stop_reason)
        elif handed_back:
            SendRecipient.objects.filter(pk__in=handed_back, status=Status.SENDING).update(
                status=Status.QUEUED,
                attempts=F("attempts") - 1,
                claim_token="",
                lease_expires_at=None,
                updated_at=now,
            )
        update_recipients_from_rows(
            ["id", "code", "title", "detail"],
            [
                (o.recipient_id, o.error_code, o.error_title, o.error_detail)
                for o in by_kind.get("failed", [])
            ],
            f"status = '{Status.FAILED}', error_code = v.code, error_title = v.title, "
            "error_detail = v.detail, failed_at = %s, updated_at = %s, lease_expires_at = NULL",
            in_flight,
            [now, now],
        )


def _skip_sending(ids: list[int], reason: str) -> None:
    """Rows whose request never left (or must not be retried) when the send was stopped."""
    if ids:
        SendRecipient.objects.filter(pk__in=ids, status=Status.SENDING).update(**_skipped(reason))
