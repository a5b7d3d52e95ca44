"""Retention of the recipient queue (issue 17.5): a busy installation adds millions of
recipient rows a day, and nothing needs those of a send that finished long ago except the
figures the analytics and metrics show for it. The purge keeps those figures on the send
(analytics.recipient_rollup), marks it purged, and only then deletes its rows, in batches
that are each their own short transaction. A purge stopped half-way resumes where it left
off: the marked send reads its rollup, never its remaining rows."""

import datetime as dt
from collections.abc import Callable, Iterator
from typing import NamedTuple

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from . import analytics, selectors
from .models import Send, SendRecipient


class Purged(NamedTuple):
    send: Send
    recipients: int


def purgeable_sends(cutoff: dt.datetime) -> QuerySet:
    """Sends finished before `cutoff` with rows left to purge (or no rollup yet)."""
    rows = SendRecipient.objects.filter(send=OuterRef("pk"))
    return (
        selectors.sends_finished_before(cutoff)
        .filter(Q(recipients_purged_at=None) | Exists(rows))
        .select_related("campaign")
        .order_by("pk")
    )


def purge_recipients(
    cutoff: dt.datetime,
    *,
    batch_size: int,
    on_batch: Callable[[Send, int, int], None] = lambda send, deleted, batch: None,
) -> Iterator[Purged]:
    """Purge each purgeable send in turn, yielding it with the rows deleted; after each
    batch `on_batch` is told the send's rows deleted so far and in that batch."""
    for send in purgeable_sends(cutoff):
        _roll_up(send)
        deleted = 0
        for count in _delete_rows(send.pk, batch_size):
            deleted += count
            on_batch(send, deleted, count)
        yield Purged(send, deleted)


def _roll_up(send: Send) -> None:
    """Keep the send's figures and mark it purged, unless an earlier run did."""
    with transaction.atomic():
        locked = Send.objects.select_for_update().get(pk=send.pk)
        if locked.recipients_purged_at:
            return
        send.recipient_rollup = analytics.recipient_rollup(send)
        send.recipients_purged_at = timezone.now()
        send.save(update_fields=["recipient_rollup", "recipients_purged_at"])


def _delete_rows(send_id: int, batch_size: int) -> Iterator[int]:
    """Delete the send's rows `batch_size` at a time, walking one_message_per_phone
    (send, phone) so each batch starts where the last ended, never past deleted entries."""
    rows = SendRecipient.objects.filter(send_id=send_id).order_by("phone_e164")
    after = ""
    while batch := list(
        rows.filter(phone_e164__gt=after).values_list("pk", "phone_e164")[:batch_size]
    ):
        yield SendRecipient.objects.filter(pk__in=[pk for pk, _ in batch]).delete()[0]
        after = batch[-1][1]
