"""A send's lifecycle: pending → materialized → sending → completed (or missed, stopped,
cancelled), one transition table with its side effects; an illegal move raises and changes
nothing."""

import itertools

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Send, SendRecipient
from campaigns.services import SEND_TRANSITIONS, SendTransitionError, transition_send
from tests.factories import CampaignFactory, SendFactory, SendRecipientFactory

pytestmark = pytest.mark.django_db

S = Send.Status
R = SendRecipient.Status

# The product's send lifecycle, written out by hand: (from, action) → to.
LEGAL = {
    (S.PENDING, "materialize"): S.MATERIALIZED,
    (S.PENDING, "miss"): S.MISSED,
    (S.MATERIALIZED, "start"): S.SENDING,
    (S.SENDING, "complete"): S.COMPLETED,
    (S.COMPLETED, "retry"): S.SENDING,  # a retry wave of its failed recipients starts
    (S.PENDING, "stop"): S.STOPPED,
    (S.MATERIALIZED, "stop"): S.STOPPED,
    (S.SENDING, "stop"): S.STOPPED,
    (S.PENDING, "cancel"): S.CANCELLED,
    (S.MATERIALIZED, "cancel"): S.CANCELLED,
    (S.SENDING, "cancel"): S.CANCELLED,
}
ILLEGAL = [
    (status, action)
    for status, action in itertools.product(S.values, SEND_TRANSITIONS)
    if (status, action) not in LEGAL
]
STAMPS = {
    "materialize": "materialized_at",
    "miss": "materialized_at",
    "start": "started_at",
    "complete": "completed_at",
    "retry": "dispatch_heartbeat_at",
    "stop": "completed_at",
    "cancel": "completed_at",
}


def running_send(status, **fields):
    return SendFactory(
        campaign=CampaignFactory(status=Campaign.Status.RUNNING), status=status, **fields
    )


def snapshot(send):
    stored = Send.objects.get(pk=send.pk)
    recipients = list(send.recipients.order_by("pk").values_list("status", "skip_reason"))
    return stored.status, stored.status_reason, stored.started_at, stored.completed_at, recipients


def test_the_table_is_the_documented_lifecycle():
    table = {
        (source, action): rule.target
        for action, rule in SEND_TRANSITIONS.items()
        for source in rule.sources
    }

    assert table == LEGAL
    assert {action: rule.stamp for action, rule in SEND_TRANSITIONS.items()} == STAMPS


@pytest.mark.parametrize(("source", "action"), list(LEGAL), ids=lambda v: str(v))
def test_every_legal_transition_moves_the_send_and_stamps_it(source, action):
    send = running_send(source)
    now = timezone.now()

    returned = transition_send(send, action, reason="because the test says so", now=now)

    assert returned is send
    stored = Send.objects.get(pk=send.pk)
    assert (send.status, stored.status) == (LEGAL[source, action], LEGAL[source, action])
    assert stored.status_reason == "because the test says so"
    assert getattr(stored, STAMPS[action]) == now


@pytest.mark.parametrize(("source", "action"), ILLEGAL, ids=lambda v: str(v))
def test_every_illegal_transition_raises_and_changes_nothing(source, action):
    send = running_send(source)
    SendRecipientFactory(send=send)
    before = snapshot(send)

    with pytest.raises(
        SendTransitionError, match=f"Cannot {action} send {send.pk}: it is {source}"
    ):
        transition_send(send, action)

    assert snapshot(send) == before


def test_an_unknown_action_is_refused():
    send = running_send(S.PENDING)

    with pytest.raises(SendTransitionError, match="Unknown send action 'launch'"):
        transition_send(send, "launch")

    assert Send.objects.get(pk=send.pk).status == S.PENDING


def test_the_status_is_checked_on_the_row_not_the_callers_copy():
    send = running_send(S.MATERIALIZED)
    stale = Send.objects.get(pk=send.pk)
    transition_send(send, "start")

    with pytest.raises(SendTransitionError, match="it is sending, not materialized"):
        transition_send(stale, "start")

    assert Send.objects.get(pk=send.pk).status == S.SENDING


@pytest.mark.parametrize(
    ("action", "reason", "skip_reason"),
    [
        ("stop", "Campaign stopped.", SendRecipient.SkipReason.STOPPED),
        ("cancel", "Campaign cancelled.", SendRecipient.SkipReason.CANCELLED),
    ],
)
def test_a_stop_or_a_cancel_skips_what_is_not_on_the_wire_yet(action, reason, skip_reason):
    send = running_send(S.MATERIALIZED)
    for status in (R.QUEUED, R.CLAIMED, R.SENDING, R.SENT):
        SendRecipientFactory(send=send, status=status)

    transition_send(send, action)

    assert Send.objects.get(pk=send.pk).status_reason == reason
    assert sorted(send.recipients.values_list("status", "skip_reason")) == sorted(
        [(R.SKIPPED, skip_reason), (R.SKIPPED, skip_reason), (R.SENDING, ""), (R.SENT, "")]
    )


def test_a_start_runs_a_scheduled_campaign():
    campaign = CampaignFactory(status=Campaign.Status.SCHEDULED)
    send = SendFactory(campaign=campaign, status=S.MATERIALIZED)

    transition_send(send, "start")

    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.RUNNING


def test_completing_the_last_send_completes_the_campaign_and_an_earlier_one_waits():
    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    first = SendFactory(campaign=campaign, status=S.SENDING)
    SendFactory(campaign=campaign, status=S.PENDING)

    transition_send(first, "complete")

    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SCHEDULED


def test_missing_the_last_send_completes_the_campaign():
    campaign = CampaignFactory(status=Campaign.Status.SCHEDULED)
    SendFactory(campaign=campaign, status=S.COMPLETED)
    last = SendFactory(campaign=campaign, status=S.PENDING)

    transition_send(last, "miss", reason="down")

    stored = Campaign.objects.get(pk=campaign.pk)
    assert (stored.status, stored.status_reason) == (
        Campaign.Status.COMPLETED,
        "Every send has fired or was missed.",
    )
