"""The dispatcher against the real Meta sandbox over a socket: every recipient once, at
most once, with Meta's answers turned into the right outcome."""

import datetime as dt
import threading

import pytest
from django.utils import timezone

from audiences.models import Lead, OptOut
from campaigns import dispatcher, recipient_list, recipients, selectors, services
from campaigns import sends as send_lifecycle
from campaigns.materializer import materialize_send
from campaigns.models import Campaign, Send, SendRecipient
from tests.factories import (
    AudienceFactory,
    CampaignFactory,
    LeadFactory,
    MessageTemplateFactory,
    OptOutFactory,
    SendFactory,
)
from tests.support import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_engine")]
Status = SendRecipient.Status

PHONES = [f"+4420794600{n:02d}" for n in range(12)]


@pytest.fixture
def firing_send(sandbox, number, marketing_template):
    """A scheduled campaign whose one send is materialized, started and due now."""

    def make(
        phones=PHONES, rate=1000, sends=1, mapping=("first_name", "variables.coupon"), **send_fields
    ):
        campaign = CampaignFactory(
            organization=number.organization,
            whatsapp_number=number,
            status=Campaign.Status.SCHEDULED,
        )
        audience = AudienceFactory(organization=number.organization)
        campaign.audiences.add(audience)
        for i, phone in enumerate(phones):
            LeadFactory(
                audience=audience,
                phone_e164=phone,
                first_name=f"Ann{i}",
                variables={"coupon": f"C{i}"},
            )
        created = [
            SendFactory(
                campaign=campaign,
                template=marketing_template,
                scheduled_for=timezone.now() + dt.timedelta(seconds=1, days=position),
                parameter_mapping=list(mapping),
                max_messages_per_second=rate,
                **send_fields,
            )
            for position in range(sends)
        ]
        send = created[0]
        materialize_send(send.pk)
        Send.objects.filter(pk=send.pk).update(scheduled_for=timezone.now())
        assert send_lifecycle.start_due_sends() == [send.pk]
        send.refresh_from_db()
        return send

    return make


def statuses(send):
    return dict(SendRecipient.objects.filter(send=send).values_list("phone_e164", "status"))


def sandbox_requests(sandbox, phone=None):
    """Sends the sandbox received (Meta takes `to` as digits without the +)."""
    requests = sandbox.requests(limit=10_000)["requests"]
    for request in requests:
        request["to"] = "+" + request["to"].lstrip("+")
    return [r for r in requests if phone is None or r["to"] == phone]


def calls_per_phone(sandbox):
    counts = {}
    for request in sandbox_requests(sandbox):
        counts[request["to"]] = counts.get(request["to"], 0) + 1
    return counts


def test_every_recipient_is_sent_once_with_rendered_parameters(sandbox, firing_send):
    send = firing_send()
    assert (
        send.campaign.__class__.objects.get(pk=send.campaign_id).status == Campaign.Status.RUNNING
    )

    assert dispatcher.dispatch_send(send.pk) is False

    assert set(statuses(send).values()) == {Status.SENT}
    assert calls_per_phone(sandbox) == {phone: 1 for phone in PHONES}
    recipient = SendRecipient.objects.get(send=send, phone_e164=PHONES[3])
    assert recipient.wamid.startswith("wamid.") and recipient.sent_at and recipient.attempts == 1
    (request,) = sandbox_requests(sandbox, PHONES[3])
    assert request["parameters"] == ["Ann3", "C3"]
    assert request["callback_data"] == str(recipient.pk)
    send.refresh_from_db()
    assert send.status == Send.Status.COMPLETED and send.completed_at
    assert Campaign.objects.get(pk=send.campaign_id).status == Campaign.Status.COMPLETED


def test_a_claim_takes_no_more_rows_than_the_wire_holds(
    sandbox, firing_send, monkeypatch, settings
):
    """At 1,000 msg/s half a second's rows are 500; claiming them would leave the worker's
    connections idle while the claim runs. It claims a wire's worth at a time instead."""
    sizes = []
    claim = recipients.claim

    def claim_and_note_the_size(send_id, token, size, *args, **kwargs):
        sizes.append(size)
        return claim(send_id, token, size, *args, **kwargs)

    monkeypatch.setattr(recipients, "claim", claim_and_note_the_size)
    send = firing_send(rate=1000)
    dispatcher.dispatch_send(send.pk, slice_seconds=10)

    assert set(sizes) == {settings.DISPATCH_CONCURRENCY}
    assert len(sizes) >= len(PHONES) // settings.DISPATCH_CONCURRENCY
    assert calls_per_phone(sandbox) == {phone: 1 for phone in PHONES}


def test_between_sends_the_campaign_goes_back_to_scheduled(firing_send):
    send = firing_send(sends=2)

    dispatcher.dispatch_send(send.pk)

    assert Campaign.objects.get(pk=send.campaign_id).status == Campaign.Status.SCHEDULED


def test_permanent_errors_fail_the_recipient_with_metas_code(sandbox, firing_send):
    sandbox.configure(ratio_permanent=1.0, permanent_code=131026)
    send = firing_send()

    dispatcher.dispatch_send(send.pk)

    rows = SendRecipient.objects.filter(send=send)
    assert {(r.status, r.error_code) for r in rows} == {(Status.FAILED, "131026")}
    assert calls_per_phone(sandbox) == {phone: 1 for phone in PHONES}


def test_meta_saying_the_user_stopped_marketing_records_an_opt_out(sandbox, firing_send):
    sandbox.configure(ratio_permanent=1.0, permanent_code=131050)
    send = firing_send(phones=PHONES[:2])

    dispatcher.dispatch_send(send.pk)

    opt_outs = OptOut.objects.filter(organization=send.campaign.organization)
    assert {(o.phone_e164, o.scope, o.source) for o in opt_outs} == {
        (phone, OptOut.Scope.MARKETING, OptOut.Source.META_ERROR) for phone in PHONES[:2]
    }


def test_transient_errors_are_retried_then_failed_after_the_last_attempt(
    sandbox, firing_send, settings
):
    settings.DISPATCH_MAX_ATTEMPTS = 3
    sandbox.configure(ratio_5xx=1.0)
    send = firing_send(phones=PHONES[:3])

    while dispatcher.dispatch_send(send.pk):
        pass

    rows = SendRecipient.objects.filter(send=send)
    assert {(r.status, r.attempts) for r in rows} == {(Status.FAILED, 3)}
    assert calls_per_phone(sandbox) == {phone: 3 for phone in PHONES[:3]}


def test_throughput_errors_are_retried_until_sent(sandbox, firing_send, settings):
    settings.DISPATCH_MAX_THROTTLED_ATTEMPTS = 30  # a coin-flip must not exhaust the budget
    sandbox.configure(ratio_429=0.5, seed=7)
    send = firing_send()

    while dispatcher.dispatch_send(send.pk):
        pass

    assert set(statuses(send).values()) == {Status.SENT}
    accepted = [r for r in sandbox_requests(sandbox) if r.get("wamid")]
    assert sorted(r["to"] for r in accepted) == sorted(PHONES)


def test_a_send_level_error_pauses_the_campaign_instead_of_burning_the_audience(
    sandbox, firing_send, number
):
    sandbox.register_number(number, access_token="expired")  # Meta answers 190
    send = firing_send()

    dispatcher.dispatch_send(send.pk)

    campaign = Campaign.objects.get(pk=send.campaign_id)
    assert campaign.status == Campaign.Status.PAUSED
    assert "190" in campaign.status_reason
    assert set(statuses(send).values()) == {Status.QUEUED}
    assert all(r.attempts == 0 for r in SendRecipient.objects.filter(send=send))
    assert sandbox.requests()["count"] <= 8  # at most one call per thread in flight


def test_a_stop_after_materialization_prevents_the_message(sandbox, firing_send):
    send = firing_send()
    OptOutFactory(organization=send.campaign.organization, phone_e164=PHONES[0])

    dispatcher.dispatch_send(send.pk)

    assert statuses(send)[PHONES[0]] == Status.SKIPPED
    assert PHONES[0] not in calls_per_phone(sandbox)
    assert statuses(send)[PHONES[1]] == Status.SENT


def test_pausing_stops_dispatch_and_resuming_continues_where_it_stopped(sandbox, firing_send):
    send = firing_send(rate=10)
    campaign = Campaign.objects.get(pk=send.campaign_id)
    worker = threading.Thread(target=dispatcher.dispatch_send, args=(send.pk,))
    worker.start()
    # Outcomes are written per batch; the sandbox sees each call as it happens.
    wait_until(lambda: sandbox.requests()["count"] >= 2)

    services.transition_campaign(campaign, "pause")
    worker.join(timeout=5)
    assert not worker.is_alive()
    sent_while_paused = SendRecipient.objects.filter(send=send, status=Status.SENT).count()
    assert sent_while_paused < len(PHONES)
    assert SendRecipient.objects.filter(send=send, status=Status.QUEUED).exists()
    assert not SendRecipient.objects.filter(send=send, status=Status.SENDING).exists()

    services.transition_campaign(campaign, "resume")
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.RUNNING
    assert send.pk in send_lifecycle.stalled_send_ids(now=timezone.now() + dt.timedelta(minutes=5))
    while dispatcher.dispatch_send(send.pk):
        pass

    assert set(statuses(send).values()) == {Status.SENT}
    assert calls_per_phone(sandbox) == {phone: 1 for phone in PHONES}


def test_cancelling_ends_the_send_and_skips_the_rest(sandbox, firing_send):
    send = firing_send()
    services.transition_campaign(Campaign.objects.get(pk=send.campaign_id), "cancel")

    dispatcher.dispatch_send(send.pk)
    send_lifecycle.finish_sends()

    send.refresh_from_db()
    assert send.status == Send.Status.CANCELLED
    assert set(statuses(send).values()) == {Status.SKIPPED}
    assert sandbox.requests()["count"] == 0


def test_a_passed_stop_at_stops_the_campaign_and_skips_what_is_left(sandbox, firing_send):
    send = firing_send(sends=2)
    Campaign.objects.filter(pk=send.campaign_id).update(
        stop_at=timezone.now() - dt.timedelta(seconds=1)
    )

    dispatcher.dispatch_send(send.pk)

    send.refresh_from_db()
    campaign = Campaign.objects.get(pk=send.campaign_id)
    assert (campaign.status, send.status) == (Campaign.Status.STOPPED, Send.Status.STOPPED)
    rows = SendRecipient.objects.filter(send=send)
    assert {(r.status, r.skip_reason) for r in rows} == {(Status.SKIPPED, "stopped")}
    assert sandbox.requests()["count"] == 0
    # The send still waiting never fires.
    assert set(campaign.sends.exclude(pk=send.pk).values_list("status", flat=True)) == {
        Send.Status.STOPPED
    }


def test_recipients_left_sending_by_a_dead_worker_become_unknown_never_queued(firing_send):
    send = firing_send(phones=PHONES[:2])
    SendRecipient.objects.filter(send=send).update(
        status=Status.SENDING, lease_expires_at=timezone.now() - dt.timedelta(seconds=1)
    )

    assert send_lifecycle.recover_lost_recipients() == 2
    assert set(statuses(send).values()) == {Status.UNKNOWN}
    assert dispatcher.dispatch_send(send.pk) is False
    assert set(statuses(send).values()) == {Status.UNKNOWN}
    send.refresh_from_db()
    assert send.status == Send.Status.COMPLETED


def test_an_unapproved_template_pauses_with_a_message_for_the_marketer(
    sandbox, firing_send, number
):
    template = MessageTemplateFactory(organization=number.organization, name="not_at_meta")
    send = firing_send(phones=PHONES[:2])
    Send.objects.filter(pk=send.pk).update(template=template)

    dispatcher.dispatch_send(send.pk)

    campaign = Campaign.objects.get(pk=send.campaign_id)
    assert campaign.status == Campaign.Status.PAUSED
    assert "132001" in campaign.status_reason


def test_a_sends_progress_counts_every_recipient_status(sandbox, firing_send):
    sandbox.configure(ratio_permanent=0.5, seed=3)
    send = firing_send()

    before = selectors.send_progress(send)
    dispatcher.dispatch_send(send.pk)
    after = selectors.send_progress(send)

    assert (before.total, before.done, before.progress) == (len(PHONES), 0, 0.0)
    assert before.counts[Status.QUEUED] == len(PHONES)
    assert after.progress == 1.0
    assert after.counts[Status.SENT] + after.counts[Status.FAILED] == len(PHONES)
    assert (
        after.counts[Status.FAILED]
        == SendRecipient.objects.filter(send=send, status=Status.FAILED).count()
        > 0
    )


def test_metas_us_marketing_block_marks_the_lead_ineligible_for_later_sends(sandbox, firing_send):
    us_phone = "+12025550143"  # a US number that reached a MARKETING send
    send = firing_send(phones=[us_phone, PHONES[0]])

    dispatcher.dispatch_send(send.pk)

    blocked = SendRecipient.objects.get(send=send, phone_e164=us_phone)
    assert (blocked.status, blocked.error_code) == (Status.FAILED, "131049")
    assert blocked.lead.ingest_status == Lead.IngestStatus.INELIGIBLE_GEO
    other = SendRecipient.objects.get(send=send, phone_e164=PHONES[0])
    assert (other.status, other.lead.ingest_status) == (Status.SENT, Lead.IngestStatus.OK)


def test_a_recipient_whose_parameter_would_be_empty_is_skipped_never_sent(sandbox, firing_send):
    send = firing_send(phones=PHONES[:3])
    blank = SendRecipient.objects.get(send=send, phone_e164=PHONES[1])
    Lead.objects.filter(pk=blank.lead_id).update(variables={"coupon": "  "})

    dispatcher.dispatch_send(send.pk)

    blank.refresh_from_db()
    assert (blank.status, blank.skip_reason) == (Status.SKIPPED, "missing_parameter")
    assert calls_per_phone(sandbox) == {PHONES[0]: 1, PHONES[2]: 1}
    assert selectors.send_progress(send).counts[Status.SKIPPED] == 1


def test_every_marketing_call_carries_the_campaigns_product_policy(sandbox, firing_send):
    send = firing_send(phones=PHONES[:2])
    Campaign.objects.filter(pk=send.campaign_id).update(product_policy="STRICT")

    dispatcher.dispatch_send(send.pk)

    assert {r["product_policy"] for r in sandbox_requests(sandbox)} == {"STRICT"}


def test_a_template_with_a_header_and_a_url_button_is_delivered_with_every_component(
    sandbox, number, marketing_template, firing_send
):
    marketing_template.components = [
        {"type": "HEADER", "format": "TEXT", "text": "For {{1}}"},
        {"type": "BODY", "text": marketing_template.body_text},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "QUICK_REPLY", "text": "Stop promotions"},
                {"type": "URL", "text": "Shop", "url": "https://shop.example/{{1}}"},
            ],
        },
    ]
    marketing_template.save()
    sandbox.register_template(marketing_template, number.waba_id)  # Meta's copy has them too
    # Body {{1}} {{2}}, then the header's {{1}}, then the Shop button's {{1}}.
    mapping = ["first_name", '"20%"', "first_name", "variables.coupon"]
    send = firing_send(phones=PHONES[:2], mapping=mapping)

    dispatcher.dispatch_send(send.pk)

    assert statuses(send) == {PHONES[0]: Status.SENT, PHONES[1]: Status.SENT}
    (request,) = sandbox_requests(sandbox, PHONES[1])
    assert request["components"] == [
        {"type": "header", "parameters": [{"type": "text", "text": "Ann1"}]},
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Ann1"}, {"type": "text", "text": "20%"}],
        },
        # The URL button is the template's second button: index 1.
        {
            "type": "button",
            "sub_type": "url",
            "index": "1",
            "parameters": [{"type": "text", "text": "C1"}],
        },
    ]
    recipient = SendRecipient.objects.get(send=send, phone_e164=PHONES[1])
    assert recipient.parameters == ["Ann1", "20%", "Ann1", "C1"]
    send.refresh_from_db()  # the recipient list's message, from what the send fired with
    assert (
        recipient_list.recipient_message(
            send.template_body, recipient.parameters, send.template_components
        )
        == "header: For Ann1\nHi Ann1, 20% off!\nbutton Shop: https://shop.example/C1"
    )
