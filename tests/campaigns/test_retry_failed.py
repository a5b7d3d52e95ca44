"""Retry the failed recipients only (issue 15.2): after a send completed with failures, a retry
wave at a time the marketer picks re-messages exactly the recipients whose failure was
transient or send-level, the eligibility rule re-checked at that time; never one that was
messaged, never a recipient-permanent failure unless its class is included."""

import datetime as dt
from collections import Counter

import pytest
from django.utils import timezone

from audiences.optouts import record_opt_out
from campaigns import dispatcher, retries, services
from campaigns import sends as send_lifecycle
from campaigns.models import Campaign, Send, SendRecipient, SendWave
from campaigns.retries import RetryRefused, failure_classes, retry_failed
from messaging.errors import RetryClass

from .conftest import UK_PHONES, running_send

Status = SendRecipient.Status
US_PHONES = [f"+1212555{n:04d}" for n in range(5)]  # Meta refuses marketing to them: 131049


def run_to_the_end(send_id: int) -> None:
    """Dispatch in this process until the send has nothing left, then let beat settle it."""
    while dispatcher.dispatch_send(send_id):
        pass
    send_lifecycle.finish_sends()


def requests_per_phone(sandbox) -> Counter:
    return Counter(r["to"] for r in sandbox.requests(limit=100_000)["requests"])


def outcome_by_phone(send) -> dict[str, tuple[str, str, int]]:
    return {
        phone: (status, code, wave)
        for phone, status, code, wave in send.recipients.values_list(
            "phone_e164", "status", "error_code", "wave"
        )
    }


@pytest.mark.django_db(transaction=True)
def test_a_retry_re_messages_exactly_the_retryable_failures_and_an_included_class(
    sandbox, number, marketing_template, fast_engine, settings
):
    settings.DISPATCH_MAX_ATTEMPTS = 1  # a 5xx fails its recipient at once: attempts ran out
    sandbox.configure(ratio_5xx=0.2, ratio_permanent=0.1, permanent_code=131026)
    send = running_send(number, marketing_template, UK_PHONES + US_PHONES)
    campaign = send.campaign
    run_to_the_end(send.pk)
    send.refresh_from_db()
    assert send.status == Send.Status.COMPLETED

    first = outcome_by_phone(send)
    transient = {
        p for p, (status, code, _) in first.items() if status == Status.FAILED and code == "131000"
    }
    undeliverable = {p for p, (status, code, _) in first.items() if code == "131026"}
    blocked = {p for p, (status, code, _) in first.items() if code == "131049"}
    messaged = {
        p for p, (status, _, _) in first.items() if status in SendRecipient.MESSAGED_STATUSES
    }
    assert blocked == set(US_PHONES)
    assert len(transient) > 30 and len(undeliverable) > 15 and len(messaged) > 200
    assert transient | undeliverable | blocked | messaged == set(first)
    by_class = {c.retry_class: c.count for c in failure_classes(send)}
    assert by_class[RetryClass.RETRYABLE] == len(transient)
    assert by_class[RetryClass.UNDELIVERABLE] == len(undeliverable)
    assert by_class[RetryClass.MARKETING_BLOCKED] == len(blocked)

    # Between the waves a transient-failed phone replies STOP: the retry honours it.
    stopped = sorted(transient)[0]
    record_opt_out(campaign.organization_id, stopped, scope="all", source="test")
    sandbox.configure(ratio_5xx=0.0, ratio_permanent=0.0)
    before = requests_per_phone(sandbox)

    wave = retry_failed(send, at=timezone.now(), requested_by="ann")
    campaign.refresh_from_db()
    assert (wave.number, wave.status) == (2, SendWave.Status.PENDING)
    assert campaign.status == Campaign.Status.SCHEDULED  # its only send is to fire again
    assert retries.start_due_retry_waves() == [send.pk]
    send.refresh_from_db()
    assert send.status == Send.Status.SENDING
    run_to_the_end(send.pk)

    after = requests_per_phone(sandbox)
    retried = transient - {stopped}
    assert {p for p in after if after[p] != before[p]} == {p.lstrip("+") for p in retried}
    assert all(after[p.lstrip("+")] - before[p.lstrip("+")] == 1 for p in retried)
    second = outcome_by_phone(send)
    assert {p for p, (status, _, w) in second.items() if w == 2} == retried
    assert all(second[p][0] == Status.SENT for p in retried)
    assert second[stopped] == first[stopped]  # still failed, never re-messaged
    wave.refresh_from_db()
    assert (wave.status, wave.chosen, wave.requeued) == (
        SendWave.Status.STARTED,
        len(transient),
        len(retried),
    )
    send.refresh_from_db()
    campaign.refresh_from_db()
    assert send.status == Send.Status.COMPLETED
    assert campaign.status == Campaign.Status.COMPLETED

    # A third wave includes the undeliverable class: those phones once more, and the US
    # phones still never (Meta's 131049 marked them ineligible for marketing).
    before = after
    wave = retry_failed(send, at=timezone.now(), include=[RetryClass.UNDELIVERABLE])
    assert wave.number == 3
    assert retries.start_due_retry_waves() == [send.pk]
    run_to_the_end(send.pk)
    after = requests_per_phone(sandbox)
    assert {p for p in after if after[p] != before[p]} == {p.lstrip("+") for p in undeliverable}
    assert all(after[p.lstrip("+")] - before[p.lstrip("+")] == 1 for p in undeliverable)
    third = outcome_by_phone(send)
    assert {p for p, (_, _, w) in third.items() if w == 3} == undeliverable
    assert all(third[p] == first[p] for p in blocked | {stopped})
    assert all(third[p] == second[p] for p in messaged | retried)


def refusal(send, **kwargs) -> RetryRefused:
    kwargs.setdefault("at", timezone.now() + dt.timedelta(hours=1))
    with pytest.raises(RetryRefused) as caught:
        retry_failed(send, **kwargs)
    return caught.value


@pytest.mark.django_db
def test_a_send_whose_failures_are_all_permanent_has_nothing_to_retry_by_default(
    completed_send,
):
    send = completed_send(
        [(Status.FAILED, "131026"), (Status.FAILED, "131050"), (Status.DELIVERED, "")],
    )

    refused = refusal(send)

    assert "undeliverable (1), marketing_stopped (1)" in refused.messages[0]
    assert "Include a class" in refused.messages[0]
    assert not SendWave.objects.exists()
    assert Campaign.objects.get(pk=send.campaign_id).status == Campaign.Status.COMPLETED
    wave = retry_failed(send, at=timezone.now(), include=[RetryClass.UNDELIVERABLE])
    assert wave.include == [RetryClass.UNDELIVERABLE]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kwargs,field,message",
    [
        ({"include": ["everything"]}, "include[0]", "'everything' is not a failure class"),
        ({"include": ["undeliverable", "x"]}, "include[1]", "'x' is not a failure class"),
        ({"at": dt.datetime(2026, 1, 1, 10)}, "at", "with its UTC offset"),
        ({"at": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)}, "at", "has passed"),
    ],
)
def test_a_retry_asked_wrongly_is_refused_naming_the_input(completed_send, kwargs, field, message):
    send = completed_send([(Status.FAILED, "131000")])

    refused = refusal(send, **kwargs)

    assert refused.field == field
    assert message in refused.messages[0]
    assert not SendWave.objects.exists()


@pytest.mark.django_db
def test_only_a_completed_send_of_a_campaign_that_still_sends_can_be_retried(completed_send):
    send = completed_send([(Status.FAILED, "131000")])
    Send.objects.filter(pk=send.pk).update(status=Send.Status.STOPPED)
    assert "this send is stopped" in refusal(Send.objects.get(pk=send.pk)).messages[0]

    send = completed_send([(Status.FAILED, "131000")])
    Campaign.objects.filter(pk=send.campaign_id).update(status=Campaign.Status.CANCELLED)
    assert "The campaign is cancelled" in refusal(send).messages[0]

    stop_at = timezone.now() + dt.timedelta(minutes=30)
    send = completed_send([(Status.FAILED, "131000")], stop_at=stop_at)
    assert refusal(send).field == "at"

    send = completed_send([(Status.DELIVERED, "")])
    assert refusal(send).messages == ["This send has no failed recipients."]


@pytest.mark.django_db
def test_one_retry_at_a_time_and_a_cancel_calls_it_off(completed_send):
    send = completed_send([(Status.FAILED, "190")])
    at = timezone.now() + dt.timedelta(hours=2)
    wave = retry_failed(send, at=at)

    assert "already scheduled" in refusal(send).messages[0]
    campaign = Campaign.objects.get(pk=send.campaign_id)
    assert campaign.status == Campaign.Status.SCHEDULED
    assert retries.start_due_retry_waves() == []  # not due yet

    services.transition_campaign(campaign, "cancel")

    wave.refresh_from_db()
    assert wave.status == SendWave.Status.CANCELLED
    assert retries.start_due_retry_waves(at) == []
    assert SendRecipient.objects.get().status == Status.FAILED


@pytest.mark.django_db
def test_a_wave_that_finds_nobody_still_reachable_completes_the_campaign_again(
    completed_send,
):
    send = completed_send([(Status.FAILED, "131000")])
    retry_failed(send, at=timezone.now())
    record_opt_out(send.campaign.organization_id, UK_PHONES[0], scope="all", source="test")

    assert retries.start_due_retry_waves() == []

    wave = SendWave.objects.get()
    assert (wave.status, wave.chosen, wave.requeued) == (SendWave.Status.STARTED, 1, 0)
    assert Campaign.objects.get(pk=send.campaign_id).status == Campaign.Status.COMPLETED
    assert Send.objects.get(pk=send.pk).status == Send.Status.COMPLETED
