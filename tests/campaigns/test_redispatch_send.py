"""`manage.py redispatch_send`: a stuck send gets dispatchers again, and nobody gets a
second message."""

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from campaigns.models import Campaign, Send, SendRecipient
from tests.factories import AudienceFactory, CampaignFactory, LeadFactory, SendFactory
from tests.support import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
Status = SendRecipient.Status

LOST_PHONES = ["+442079461201", "+442079461202"]  # in `sending` when their worker died
QUEUED_PHONES = ["+442079461203", "+442079461204", "+442079461205"]


def stuck_send(number, template, *, heartbeat_age, lost=LOST_PHONES, queued=QUEUED_PHONES):
    """A sending send whose worker died `heartbeat_age` seconds ago mid-batch."""
    campaign = CampaignFactory(
        organization=number.organization, whatsapp_number=number, status=Campaign.Status.RUNNING
    )
    audience = AudienceFactory(organization=number.organization)
    campaign.audiences.add(audience)
    now = timezone.now()
    send = SendFactory(
        campaign=campaign,
        template=template,
        status=Send.Status.SENDING,
        scheduled_for=now - dt.timedelta(minutes=10),
        started_at=now - dt.timedelta(minutes=10),
        dispatch_heartbeat_at=now - dt.timedelta(seconds=heartbeat_age),
        parameter_mapping=["first_name", "variables.coupon"],
    )
    for phones, status in ((lost, Status.SENDING), (queued, Status.QUEUED)):
        for phone in phones:
            lead = LeadFactory(
                audience=audience, phone_e164=phone, first_name="Ann", variables={"coupon": "C"}
            )
            SendRecipient.objects.create(send=send, lead=lead, phone_e164=phone, status=status)
    # On the wire when the worker died, whose lease on them lapsed long ago.
    SendRecipient.objects.filter(send=send, status=Status.SENDING).update(
        claim_token="dead-worker", lease_expires_at=now - dt.timedelta(minutes=5)
    )
    return send


def redispatch(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("redispatch_send", *map(str, args), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def statuses(send) -> dict[str, str]:
    return dict(send.recipients.values_list("phone_e164", "status"))


def test_a_stalled_send_is_redispatched_and_its_lost_recipients_are_never_resent(
    sandbox, number, marketing_template, celery_worker, fast_engine
):
    send = stuck_send(number, marketing_template, heartbeat_age=300)

    out, _ = redispatch(send.pk)

    assert f"Send {send.pk}: 2 recipient(s) whose dispatcher's lease lapsed while sending" in out
    assert "queued 2 dispatch task(s) for its 3 queued recipient(s)" in out
    wait_until(lambda: Send.objects.get(pk=send.pk).status == Send.Status.COMPLETED, timeout=30)
    assert statuses(send) == {
        **dict.fromkeys(LOST_PHONES, Status.UNKNOWN),
        **dict.fromkeys(QUEUED_PHONES, Status.SENT),
    }
    called = {"+" + r["to"].lstrip("+") for r in sandbox.requests()["requests"]}
    assert called == set(QUEUED_PHONES)


@pytest.mark.parametrize(
    ("send_status", "campaign_status", "reason"),
    [
        (Send.Status.COMPLETED, Campaign.Status.RUNNING, "is completed, not sending"),
        (Send.Status.MATERIALIZED, Campaign.Status.SCHEDULED, "is materialized, not sending"),
        (Send.Status.SENDING, Campaign.Status.PAUSED, "campaign is paused: resume the campaign"),
    ],
)
def test_only_a_sending_send_of_an_active_campaign_is_redispatched(
    number, marketing_template, send_status, campaign_status, reason
):
    send = stuck_send(number, marketing_template, heartbeat_age=300)
    Send.objects.filter(pk=send.pk).update(status=send_status)
    Campaign.objects.filter(pk=send.campaign_id).update(status=campaign_status)

    with pytest.raises(CommandError, match=reason):
        redispatch(send.pk)

    assert set(statuses(send).values()) == {Status.SENDING, Status.QUEUED}


def test_an_unknown_send_is_refused():
    with pytest.raises(CommandError, match="There is no send 999999"):
        redispatch(999999)


def test_a_send_with_a_live_dispatcher_is_refused_without_force(number, marketing_template):
    send = stuck_send(number, marketing_template, heartbeat_age=5)

    with pytest.raises(CommandError, match=r"heartbeat is 5 s old \(stale after 30 s\).*--force"):
        redispatch(send.pk)

    assert set(statuses(send).values()) == {Status.SENDING, Status.QUEUED}


def test_force_redispatches_despite_a_fresh_heartbeat_with_a_warning(
    sandbox, number, marketing_template, celery_worker, fast_engine
):
    send = stuck_send(number, marketing_template, heartbeat_age=5)

    out, err = redispatch(send.pk, "--force")

    assert "Re-dispatching anyway (--force)" in err
    assert "queued 2 dispatch task(s) for its 3 queued recipient(s)" in out
    wait_until(lambda: Send.objects.get(pk=send.pk).status == Send.Status.COMPLETED, timeout=30)
    assert sandbox.requests()["count"] == len(QUEUED_PHONES)


def test_a_send_with_nothing_queued_is_settled_instead(number, marketing_template):
    send = stuck_send(number, marketing_template, heartbeat_age=300, queued=[])

    out, _ = redispatch(send.pk)

    assert "nothing left to dispatch; it is now completed" in out
    assert set(statuses(send).values()) == {Status.UNKNOWN}


def test_recipients_in_flight_for_a_short_while_are_left_to_the_engine(number, marketing_template):
    send = stuck_send(number, marketing_template, heartbeat_age=300, queued=[])
    send.recipients.update(lease_expires_at=timezone.now() + dt.timedelta(seconds=10))

    with pytest.raises(CommandError, match="nothing queued, 2 recipient.s. held by a dispatcher"):
        redispatch(send.pk)

    assert Send.objects.get(pk=send.pk).status == Send.Status.SENDING
    assert set(statuses(send).values()) == {Status.SENDING}


def test_engine_status_flags_a_send_whose_dispatch_heartbeat_is_stale(number, marketing_template):
    stalled = stuck_send(number, marketing_template, heartbeat_age=300)
    out = io.StringIO()

    call_command("engine_status", stdout=out)

    assert f"send {stalled.pk} " in out.getvalue()
    assert "dispatch heartbeat 300 s ago STALE: see redispatch_send" in out.getvalue()
