"""The lifecycle: draft → scheduled ↔ paused → cancelled, with running/completed driven by
the send engine. One state machine; an illegal move raises and changes nothing."""

import datetime as dt
import itertools
import threading

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from campaigns.models import Campaign, Send, SendRecipient
from campaigns.services import CampaignTransitionError, transition_campaign
from tests.campaigns.editor import ready_campaign, refreshed
from tests.factories import CampaignFactory, SendFactory
from tests.support import wait_until

pytestmark = pytest.mark.django_db

S = Campaign.Status

# The product's lifecycle, written out by hand: (from, action) → to.
LEGAL = {
    (S.DRAFT, "schedule"): S.SCHEDULED,
    (S.SCHEDULED, "pause"): S.PAUSED,
    (S.RUNNING, "pause"): S.PAUSED,
    (S.PAUSED, "resume"): S.SCHEDULED,
    (S.DRAFT, "cancel"): S.CANCELLED,
    (S.SCHEDULED, "cancel"): S.CANCELLED,
    (S.PAUSED, "cancel"): S.CANCELLED,
    (S.RUNNING, "cancel"): S.CANCELLED,
    (S.SCHEDULED, "start_running"): S.RUNNING,
    (S.RUNNING, "finish_send"): S.SCHEDULED,
    (S.SCHEDULED, "complete"): S.COMPLETED,
    (S.RUNNING, "complete"): S.COMPLETED,
    (S.COMPLETED, "reopen"): S.SCHEDULED,  # a retry of a completed send's failures
}
ACTIONS = sorted({action for _, action in LEGAL})
ILLEGAL = [
    (status, action)
    for status, action in itertools.product(S.values, ACTIONS)
    if (status, action) not in LEGAL
]


def snapshot(campaign):
    """Everything a transition could touch."""
    campaign = refreshed(campaign)
    sends = list(campaign.sends.order_by("pk").values_list("pk", "status", "status_reason"))
    recipients = list(
        SendRecipient.objects.filter(send__campaign=campaign).order_by("pk").values_list("status")
    )
    return campaign.status, campaign.status_reason, campaign.updated_at, sends, recipients


@pytest.mark.parametrize(("source", "action"), list(LEGAL), ids=lambda v: str(v))
def test_every_legal_transition_moves_the_campaign(source, action):
    campaign = ready_campaign(status=source)

    returned = transition_campaign(campaign, action, reason="because the test says so")

    assert returned is campaign
    assert campaign.status == LEGAL[source, action]
    stored = refreshed(campaign)
    assert stored.status == LEGAL[source, action]
    assert stored.status_reason == "because the test says so"


@pytest.mark.parametrize(("source", "action"), ILLEGAL, ids=lambda v: str(v))
def test_every_illegal_transition_raises_and_changes_nothing(source, action):
    campaign = ready_campaign(status=source)
    before = snapshot(campaign)

    with pytest.raises(CampaignTransitionError) as raised:
        transition_campaign(campaign, action)

    assert raised.value.code == "illegal_transition"
    assert raised.value.messages[0].startswith("Cannot ")
    assert snapshot(campaign) == before
    assert campaign.status == source


@pytest.mark.parametrize(
    ("source", "action", "message"),
    [
        (S.DRAFT, "pause", "Cannot pause a draft campaign"),
        (S.DRAFT, "resume", "Cannot resume a draft campaign"),
        (S.SCHEDULED, "schedule", "Cannot schedule a scheduled campaign"),
        (S.CANCELLED, "resume", "Cannot resume a cancelled campaign"),
        (S.COMPLETED, "cancel", "Cannot cancel a completed campaign"),
        (S.PAUSED, "start_running", "Cannot start running a paused campaign"),
    ],
)
def test_an_illegal_transition_says_what_was_refused(source, action, message):
    campaign = ready_campaign(status=source)

    with pytest.raises(CampaignTransitionError) as raised:
        transition_campaign(campaign, action)

    assert raised.value.messages == [message]


def test_an_unknown_action_is_refused():
    campaign = ready_campaign()

    with pytest.raises(CampaignTransitionError, match="Unknown campaign action 'launch'"):
        transition_campaign(campaign, "launch")

    assert refreshed(campaign).status == S.DRAFT


def test_the_status_is_read_from_the_locked_row_not_the_callers_copy():
    campaign = ready_campaign(status=S.SCHEDULED)
    stale = Campaign.objects.get(pk=campaign.pk)
    transition_campaign(campaign, "cancel")

    with pytest.raises(CampaignTransitionError, match="Cannot pause a cancelled campaign"):
        transition_campaign(stale, "pause")

    assert refreshed(campaign).status == S.CANCELLED


# --- Effects on sends -----------------------------------------------------------------------


def test_cancel_cancels_sends_that_have_not_fired_and_skips_their_queued_messages():
    campaign = ready_campaign(status=S.RUNNING, sends=0)
    statuses = [
        Send.Status.COMPLETED,
        Send.Status.SENDING,
        Send.Status.MATERIALIZED,
        Send.Status.PENDING,
        Send.Status.MISSED,
    ]
    sends = {status: SendFactory(campaign=campaign, status=status) for status in statuses}
    queued = SendRecipient.objects.create(
        send=sends[Send.Status.MATERIALIZED], phone_e164="+447700900001"
    )
    not_sent_yet = SendRecipient.objects.create(
        send=sends[Send.Status.SENDING], phone_e164="+447700900001"
    )
    in_flight = SendRecipient.objects.create(
        send=sends[Send.Status.SENDING],
        phone_e164="+447700900002",
        status=SendRecipient.Status.SENDING,
    )

    transition_campaign(campaign, "cancel", reason="Wrong coupon")

    after = {status: Send.objects.get(pk=send.pk) for status, send in sends.items()}
    assert after[Send.Status.PENDING].status == Send.Status.CANCELLED
    assert after[Send.Status.PENDING].status_reason == "Wrong coupon"
    assert after[Send.Status.MATERIALIZED].status == Send.Status.CANCELLED
    # Firing and finished sends are the dispatcher's to wind down, not ours to rewrite.
    assert after[Send.Status.SENDING].status == Send.Status.SENDING
    assert after[Send.Status.COMPLETED].status == Send.Status.COMPLETED
    assert after[Send.Status.MISSED].status == Send.Status.MISSED
    for recipient in (queued, not_sent_yet, in_flight):
        recipient.refresh_from_db()
    # Every message not yet on the wire is skipped at once, also of the firing send; the one
    # in flight keeps its course and gets Meta's real answer.
    assert (queued.status, queued.skip_reason) == (SendRecipient.Status.SKIPPED, "cancelled")
    assert "cancelled" in queued.error_title.lower()
    assert (not_sent_yet.status, not_sent_yet.skip_reason) == (
        SendRecipient.Status.SKIPPED,
        "cancelled",
    )
    assert in_flight.status == SendRecipient.Status.SENDING


def test_a_cancelled_campaign_leaves_no_send_pending():
    campaign = ready_campaign(sends=3)
    transition_campaign(campaign, "schedule")

    transition_campaign(campaign, "cancel")

    assert set(campaign.sends.values_list("status", flat=True)) == {Send.Status.CANCELLED}


def test_finish_send_completes_the_campaign_when_no_send_is_left():
    campaign = ready_campaign(status=S.RUNNING, sends=2)
    campaign.sends.update(status=Send.Status.COMPLETED)

    transition_campaign(campaign, "finish_send")

    assert refreshed(campaign).status == S.COMPLETED


def test_finish_send_keeps_running_while_another_send_fires():
    campaign = ready_campaign(status=S.RUNNING, sends=2)
    first, second = campaign.sends.order_by("position")
    Send.objects.filter(pk=first.pk).update(status=Send.Status.COMPLETED)
    Send.objects.filter(pk=second.pk).update(status=Send.Status.SENDING)

    transition_campaign(campaign, "finish_send")

    assert refreshed(campaign).status == S.RUNNING


def test_resume_picks_up_a_send_that_was_firing_when_paused():
    campaign = ready_campaign(status=S.PAUSED, sends=2)
    first = campaign.sends.order_by("position").first()
    Send.objects.filter(pk=first.pk).update(status=Send.Status.SENDING)

    transition_campaign(campaign, "resume")

    assert refreshed(campaign).status == S.RUNNING


def test_resume_refuses_when_a_pending_send_is_now_in_the_past():
    campaign = ready_campaign(status=S.PAUSED, sends=2)
    first, second = campaign.sends.order_by("position")
    past = (timezone.now() - dt.timedelta(hours=2)).replace(second=7, microsecond=0)
    Send.objects.filter(pk=first.pk).update(
        status=Send.Status.COMPLETED, scheduled_for=past - dt.timedelta(days=1)
    )
    Send.objects.filter(pk=second.pk).update(
        scheduled_for=past, local_date=past.date(), local_time=past.time()
    )
    before = snapshot(campaign)

    with pytest.raises(CampaignTransitionError) as raised:
        transition_campaign(campaign, "resume")

    # Send 1 fired long ago and does not count; send 2 was still waiting.
    assert raised.value.messages == [f"Send 2 is in the past ({past:%Y-%m-%d %H:%M:%S} UTC)"]
    assert snapshot(campaign) == before


def test_resume_with_every_send_finished_completes_the_campaign():
    campaign = ready_campaign(status=S.PAUSED, sends=1)
    campaign.sends.update(status=Send.Status.MISSED)

    transition_campaign(campaign, "resume")

    assert refreshed(campaign).status == S.COMPLETED


# --- The row lock ---------------------------------------------------------------------------


def _waiting_on_a_lock() -> bool:
    with connections["default"].cursor() as cursor:
        # Within a transaction the statistics views are a snapshot unless cleared.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_a_transition_waits_for_a_concurrent_one_and_then_sees_its_result():
    campaign = CampaignFactory(status=S.SCHEDULED)
    outcome = {}

    def pause_from_another_connection():
        try:
            transition_campaign(Campaign.objects.get(pk=campaign.pk), "pause")
            outcome["status"] = "paused"
        except CampaignTransitionError as error:
            outcome["error"] = error.messages
        finally:
            connection.close()

    with transaction.atomic():
        Campaign.objects.select_for_update().get(pk=campaign.pk)
        pauser = threading.Thread(target=pause_from_another_connection)
        pauser.start()
        wait_until(_waiting_on_a_lock)
        Campaign.objects.filter(pk=campaign.pk).update(status=S.CANCELLED)
    pauser.join(timeout=10)

    assert outcome == {"error": ["Cannot pause a cancelled campaign"]}
    assert refreshed(campaign).status == S.CANCELLED
