"""A recipient's lifecycle: one transition table for the send engine's writes and Meta's
reports alike. Each write moves exactly the rows whose status its transition names and
leaves the others as they are, so whatever got there first is never undone."""

import datetime as dt

import pytest
from django.utils import timezone

from campaigns import recipients
from campaigns.feedback import StatusUpdate, ingest_statuses
from campaigns.models import SendRecipient
from campaigns.recipient_sql import JSON_VALUE
from campaigns.recipients import (
    RECIPIENT_TRANSITIONS,
    Outcome,
    RecipientTransitionError,
    transition,
    transition_rows,
)
from tests.factories import SendFactory, SendRecipientFactory

pytestmark = pytest.mark.django_db

S = SendRecipient.Status
TOKEN = "holder"

# The product's recipient lifecycle, written out by hand: verb → (from, to).
LEGAL = {
    "claim": ({S.QUEUED}, S.CLAIMED),
    "release": ({S.CLAIMED}, S.QUEUED),
    "mark_sending": ({S.CLAIMED}, S.SENDING),
    "retry": ({S.SENDING}, S.QUEUED),
    "lose": ({S.SENDING}, S.UNKNOWN),
    "answer_sent": ({S.SENDING, S.UNKNOWN}, S.SENT),
    "answer_failed": ({S.SENDING, S.UNKNOWN}, S.FAILED),
    "skip": ({S.QUEUED, S.CLAIMED}, S.SKIPPED),
    "skip_in_flight": ({S.SENDING}, S.SKIPPED),
    "requeue_failed": ({S.FAILED}, S.QUEUED),  # the marketer retries a completed send's failures
    "report_sent": ({S.SENDING, S.UNKNOWN}, S.SENT),
    "report_delivered": ({S.SENDING, S.UNKNOWN, S.SENT}, S.DELIVERED),
    "report_read": ({S.SENDING, S.UNKNOWN, S.SENT, S.DELIVERED}, S.READ),
    "report_failed": ({S.SENDING, S.UNKNOWN, S.SENT}, S.FAILED),
}


@pytest.fixture
def rows():
    """One recipient of one send in every status, tried once, held by TOKEN under a lapsed
    lease."""
    send = SendFactory()
    lapsed = timezone.now() - dt.timedelta(minutes=1)
    return {
        status: SendRecipientFactory(
            send=send, status=status, claim_token=TOKEN, lease_expires_at=lapsed, attempts=1
        )
        for status in S.values
    }


def statuses(rows):
    stored = dict(SendRecipient.objects.values_list("pk", "status"))
    return {status: stored[row.pk] for status, row in rows.items()}


def moved_by(verb, before=S.values):
    """What the table says each status becomes."""
    sources, target = LEGAL[verb]
    return {status: target if status in sources else status for status in before}


def test_the_table_is_the_documented_lifecycle():
    table = {verb: (set(rule.sources), rule.target) for verb, rule in RECIPIENT_TRANSITIONS.items()}

    assert table == LEGAL


def test_nothing_moves_back_once_meta_settled_it():
    """Delivered, read and skipped rows only ever move forward in Meta's order; a failed one
    is queued again only by the marketer's retry (campaigns.retries), as a new message."""
    forward = {S.DELIVERED: {S.READ}, S.READ: set(), S.FAILED: {S.QUEUED}, S.SKIPPED: set()}
    for status, later in forward.items():
        targets = {rule.target for rule in RECIPIENT_TRANSITIONS.values() if status in rule.sources}
        assert targets == later, status


@pytest.mark.parametrize("verb", list(LEGAL))
def test_a_set_based_transition_moves_exactly_the_rows_it_allows(rows, verb):
    moved = transition(verb, SendRecipient.objects.all())

    assert statuses(rows) == moved_by(verb)
    assert moved == len(LEGAL[verb][0])


@pytest.mark.parametrize("verb", list(LEGAL))
def test_a_per_row_transition_moves_exactly_the_rows_it_allows(rows, verb):
    values = [(row.pk, "E1") for row in rows.values()]

    moved = transition_rows(verb, ["id", "code"], values, "error_code = v.code")

    assert statuses(rows) == moved_by(verb)
    assert moved == len(LEGAL[verb][0])
    changed = set(SendRecipient.objects.filter(error_code="E1").values_list("status", flat=True))
    assert changed == {LEGAL[verb][1]}


def test_per_row_values_arrive_as_written():
    """Ids, text that array syntax would quote (braces, commas, quotes, backslashes, the
    word NULL), instants and missing instants in one column, JSON text: each row gets its
    own values back, whatever the statement carries them in."""
    send = SendFactory()
    first, second = (SendRecipientFactory(send=send, status=S.SENDING) for _ in range(2))
    at = timezone.now().replace(microsecond=123456)
    tricky = 'He said "no", {then} \\ yes; NULL'

    moved = transition_rows(
        "answer_sent",
        ["id", "wamid", "at", "parameters"],
        [(first.pk, tricky, at, '["Ann", "{x}"]'), (second.pk, "NULL", None, "[]")],
        f"wamid = v.wamid, sent_at = v.at, parameters = {JSON_VALUE.format('v.parameters')}",
    )

    assert moved == 2
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.wamid, first.sent_at, first.parameters) == (tricky, at, ["Ann", "{x}"])
    assert (second.wamid, second.sent_at, second.parameters) == ("NULL", None, [])


def test_an_unknown_transition_or_a_callers_status_is_refused(rows):
    with pytest.raises(RecipientTransitionError, match="Unknown recipient transition 'resend'"):
        transition("resend", SendRecipient.objects.all())
    with pytest.raises(RecipientTransitionError, match="target is its table's"):
        transition("claim", SendRecipient.objects.all(), status=S.SENT)

    assert statuses(rows) == {status: status for status in S.values}


# --- The engine's and Meta's writes are the table's transitions ----------------------------


def test_a_stop_skips_the_rows_not_on_the_wire(rows):
    recipients.skip_unsent([rows[S.QUEUED].send_id], SendRecipient.SkipReason.STOPPED)

    assert statuses(rows) == moved_by("skip")


def test_a_holders_skip_and_release_touch_only_its_claimed_rows(rows):
    ids = [row.pk for row in rows.values()]
    recipients.skip(ids, SendRecipient.SkipReason.OPTED_OUT, holder=TOKEN)
    assert statuses(rows) == moved_by("skip")

    recipients.release(TOKEN, ids)
    assert statuses(rows) == moved_by("skip")  # nothing claimed is left to release


def test_a_release_puts_claimed_rows_back_in_the_queue(rows):
    recipients.release(TOKEN, [row.pk for row in rows.values()])

    assert statuses(rows) == moved_by("release")


def test_marking_sending_takes_only_the_holders_claimed_rows(rows):
    marked = recipients.mark_sending(TOKEN, [(row.pk, ["Ann"]) for row in rows.values()])

    assert marked == {rows[S.CLAIMED].pk}
    assert statuses(rows) == moved_by("mark_sending")


def test_marking_sending_stores_the_parameters_the_request_carries(rows):
    claimed = rows[S.CLAIMED]
    recipients.mark_sending(TOKEN, [(claimed.pk, ["Zoë", '50% "off"'])])

    claimed.refresh_from_db()
    assert claimed.parameters == ["Zoë", '50% "off"']
    # Rows that did not go on the wire keep none.
    assert not SendRecipient.objects.exclude(pk=claimed.pk).filter(parameters__isnull=False)


def test_a_dead_holders_rows_are_recovered_by_the_table(rows):
    assert recipients.recover_expired() == (1, 1)

    expected = moved_by("release") | {S.SENDING: S.UNKNOWN}
    assert statuses(rows) == expected


@pytest.mark.parametrize(
    ("kind", "verb"),
    [("sent", "answer_sent"), ("failed", "answer_failed"), ("unknown", "lose")],
)
def test_meta_s_answers_are_written_by_the_table(rows, kind, verb):
    now = timezone.now()
    outcomes = [Outcome(row.pk, kind, at=now, wamid=f"wamid.{row.pk}") for row in rows.values()]

    recipients.record(outcomes)

    assert statuses(rows) == moved_by(verb)


@pytest.mark.parametrize("kind", ["retry", "requeue"])
def test_retries_and_hand_backs_requeue_only_rows_in_flight(rows, kind):
    outcomes = [Outcome(row.pk, kind, retry_at=timezone.now()) for row in rows.values()]

    recipients.record(outcomes)
    assert statuses(rows) == moved_by("retry")


def test_a_stopped_sends_retries_are_skipped_instead(rows):
    outcomes = [Outcome(row.pk, "retry", retry_at=timezone.now()) for row in rows.values()]

    recipients.record(outcomes, stop_reason=SendRecipient.SkipReason.STOPPED)

    assert statuses(rows) == moved_by("skip_in_flight")


@pytest.mark.parametrize(
    ("reported", "verb"),
    [
        (S.SENT, "report_sent"),
        (S.DELIVERED, "report_delivered"),
        (S.READ, "report_read"),
        (S.FAILED, "report_failed"),
    ],
)
def test_metas_status_reports_move_rows_by_the_table(rows, reported, verb):
    number = rows[S.QUEUED].send.campaign.whatsapp_number
    updates = [
        StatusUpdate(number.phone_number_id, "", reported, timezone.now(), str(row.pk))
        for row in rows.values()
    ]

    assert ingest_statuses(updates).moved == len(LEGAL[verb][0])

    assert statuses(rows) == moved_by(verb)
