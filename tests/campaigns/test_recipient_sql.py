"""Bulk writes by row (campaigns.recipient_sql): every value arrives exactly as written."""

import datetime as dt

import pytest

from campaigns.models import SendRecipient
from campaigns.recipient_sql import update_recipients_from_rows
from tests.factories import SendFactory, SendRecipientFactory

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 12, 4, 18, 50, 1, 123456, tzinfo=dt.UTC)
TITLES = [
    'Meta said "no" \\ twice',
    "Ünïcödé, emoji 🚀 and a\nnewline",
    "'; DROP TABLE campaigns_sendrecipient; --",
    "",
]


def test_each_rows_values_arrive_exactly_whatever_their_characters():
    send = SendFactory()
    rows = [SendRecipientFactory(send=send, phone_e164=f"+4479460000{n}") for n in range(4)]
    values = [
        (row.pk, title, AT + dt.timedelta(microseconds=n), n + 1, n % 2 == 0)
        for n, (row, title) in enumerate(zip(rows, TITLES, strict=True))
    ]

    changed = update_recipients_from_rows(
        ["id", "title", "at", "n", "flag"],
        values,
        "error_title = v.title, sent_at = v.at, attempts = v.n, limited_reporting = v.flag",
        "TRUE",
    )

    assert changed == 4
    stored = SendRecipient.objects.filter(send=send).order_by("id")
    assert [
        (r.pk, r.error_title, r.sent_at, r.attempts, r.limited_reporting) for r in stored
    ] == values


def test_a_column_of_some_nulls_writes_null_where_the_row_has_none():
    send = SendFactory()
    first, second = (
        SendRecipientFactory(send=send, phone_e164=f"+4479460001{n}") for n in range(2)
    )

    update_recipients_from_rows(
        ["id", "at"], [(first.pk, None), (second.pk, AT)], "sent_at = v.at", "TRUE"
    )

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.sent_at, second.sent_at) == (None, AT)


def test_a_condition_leaves_rows_that_moved_on_alone_and_returning_names_the_others():
    send = SendFactory()
    rows = [SendRecipientFactory(send=send, phone_e164=f"+4479460002{n}") for n in range(3)]
    SendRecipient.objects.filter(pk=rows[1].pk).update(status=SendRecipient.Status.SENT)

    moved = update_recipients_from_rows(
        ["id", "title"],
        [(row.pk, "x") for row in rows],
        "error_title = v.title",
        "campaigns_sendrecipient.status = %s",
        [SendRecipient.Status.QUEUED],
        returning=True,
    )

    assert moved == {rows[0].pk, rows[2].pk}
