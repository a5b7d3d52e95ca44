"""The materializer: who a send goes to, computed once, in the database (the recipient set
itself, against an independent computation, is in test_eligibility)."""

import datetime as dt
import threading
import time

import pytest
from django.db import connection
from django.test.utils import override_settings
from django.utils import timezone

from audiences.models import Audience, Lead, OptOut, SegmentTarget
from campaigns.materializer import due_send_ids, materialize_due_sends, materialize_send
from campaigns.models import Campaign, Send, SendRecipient
from tests.factories import (
    AudienceFactory,
    CampaignFactory,
    LeadFactory,
    OptOutFactory,
    SendFactory,
    UserFactory,
)
from tests.planner import forget_planner_statistics, insert_leads

pytestmark = pytest.mark.django_db


def test_recipients_carry_the_lead_and_its_limited_reporting_flag():
    campaign = CampaignFactory(status=Campaign.Status.SCHEDULED)
    audience = AudienceFactory(organization=campaign.organization)
    campaign.audiences.add(audience)
    uk = LeadFactory(audience=audience, phone_e164="+442079460001", limited_reporting=True)
    br = LeadFactory(audience=audience, phone_e164="+5511912345678", limited_reporting=False)
    send = SendFactory(campaign=campaign, scheduled_for=timezone.now() + dt.timedelta(seconds=30))

    materialize_send(send.pk)

    rows = {r.phone_e164: r for r in SendRecipient.objects.filter(send=send)}
    assert rows[uk.phone_e164].lead_id == uk.pk and rows[uk.phone_e164].limited_reporting
    assert rows[br.phone_e164].lead_id == br.pk and not rows[br.phone_e164].limited_reporting
    assert {r.status for r in rows.values()} == {SendRecipient.Status.QUEUED}


def scheduled_send(**kwargs):
    campaign = CampaignFactory(status=kwargs.pop("campaign_status", Campaign.Status.SCHEDULED))
    audience = AudienceFactory(organization=campaign.organization)
    campaign.audiences.add(audience)
    LeadFactory.create_batch(3, audience=audience)
    kwargs.setdefault("scheduled_for", timezone.now() + dt.timedelta(seconds=30))
    return SendFactory(campaign=campaign, **kwargs)


def test_running_it_again_adds_nothing():
    send = scheduled_send()
    assert materialize_send(send.pk).recipient_count == 3
    assert materialize_send(send.pk) is None

    # Even forced back to pending, the insert is idempotent per (send, phone).
    Send.objects.filter(pk=send.pk).update(status=Send.Status.PENDING)
    assert materialize_send(send.pk).recipient_count == 3
    assert SendRecipient.objects.filter(send=send).count() == 3


def test_a_rerun_counts_the_rows_it_found_and_the_rows_it_added():
    """The count comes from the insert, not a second read: the rows already there are
    counted, and a phone already there is not inserted twice."""
    send = scheduled_send()
    materialize_send(send.pk)
    LeadFactory(audience=send.campaign.audiences.get())
    Send.objects.filter(pk=send.pk).update(status=Send.Status.PENDING)

    assert materialize_send(send.pk).recipient_count == 4
    assert Send.objects.get(pk=send.pk).recipient_count == 4
    assert SendRecipient.objects.filter(send=send).count() == 4


@pytest.mark.parametrize(
    "campaign_status", [Campaign.Status.PAUSED, Campaign.Status.CANCELLED, Campaign.Status.DRAFT]
)
def test_campaigns_that_are_not_scheduled_are_skipped(campaign_status):
    send = scheduled_send(campaign_status=campaign_status)

    assert send.pk not in due_send_ids()
    assert materialize_due_sends() == []
    result = materialize_send(send.pk)
    assert result.recipient_count == 0
    send.refresh_from_db()
    assert send.status == Send.Status.PENDING
    assert not SendRecipient.objects.filter(send=send).exists()


@override_settings(SEND_MATERIALIZE_AHEAD_SECONDS=60)
def test_only_sends_within_the_lead_time_are_due():
    soon = scheduled_send(scheduled_for=timezone.now() + dt.timedelta(seconds=50))
    later = scheduled_send(scheduled_for=timezone.now() + dt.timedelta(seconds=120))

    results = materialize_due_sends()

    assert [r.send_id for r in results] == [soon.pk]
    later.refresh_from_db()
    assert later.status == Send.Status.PENDING


@override_settings(SEND_MISSED_AFTER_SECONDS=3600)
def test_a_send_whose_time_passed_while_the_system_was_down_is_missed_not_blasted():
    send = scheduled_send(scheduled_for=timezone.now() - dt.timedelta(hours=2))

    result = materialize_send(send.pk)

    send.refresh_from_db()
    assert send.status == Send.Status.MISSED == result.status
    assert "passed more than 60 minutes" in send.status_reason
    assert not SendRecipient.objects.filter(send=send).exists()


def test_a_filtered_send_without_a_filter_event_reaches_nobody_and_says_why():
    send = scheduled_send(audience_filter_mode=Send.AudienceFilterMode.WEBHOOK_FILTERED)

    result = materialize_send(send.pk)

    assert result.recipient_count == 0
    send.refresh_from_db()
    assert send.status == Send.Status.MATERIALIZED
    assert "no filter event arrived" in send.status_reason


@pytest.mark.django_db(transaction=True)
def test_racing_materializers_claim_a_send_once():
    if connection.vendor != "postgresql":
        pytest.fail("row locks need PostgreSQL")
    send = scheduled_send()
    results, barrier = [], threading.Barrier(4)

    def run():
        barrier.wait()
        try:
            results.append(materialize_send(send.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    done = [r for r in results if r is not None]
    assert len(done) == 1 and done[0].recipient_count == 3
    assert SendRecipient.objects.filter(send=send).count() == 3


@override_settings(SEND_MISSED_AFTER_SECONDS=3600)
def test_a_campaign_whose_last_send_was_missed_is_completed():
    send = scheduled_send(scheduled_for=timezone.now() - dt.timedelta(hours=2))

    materialize_send(send.pk)

    send.campaign.refresh_from_db()
    assert send.campaign.status == Campaign.Status.COMPLETED


def test_the_campaign_editor_shows_a_materialized_sends_progress(client):
    send = scheduled_send()
    materialize_send(send.pk)
    client.force_login(UserFactory(organization=send.campaign.organization))

    page = client.get(f"/admin/campaigns/campaign/{send.campaign_id}/change/").content.decode()

    assert "0% of 3 recipients done" in page
    assert "queued 3" in page


UNANALYSED_LEADS = 60_000


def test_sixty_thousand_leads_never_analysed_materialize_in_seconds():
    """Issue 17.1: without planner statistics the old shape took 287 s for 60k leads."""
    if connection.vendor != "postgresql":
        pytest.fail("planner statistics are PostgreSQL's")
    campaign = CampaignFactory(status=Campaign.Status.SCHEDULED)
    audience = AudienceFactory(organization=campaign.organization)
    campaign.audiences.add(audience)
    insert_leads(audience, UNANALYSED_LEADS)
    distinct = UNANALYSED_LEADS * 10 // 11
    opted_out = [f"+4477{n:08d}" for n in range(0, distinct, 30)]
    OptOut.objects.bulk_create(
        OptOutFactory.build(organization=campaign.organization, phone_e164=phone)
        for phone in opted_out
    )
    send = SendFactory(campaign=campaign, scheduled_for=timezone.now() + dt.timedelta(seconds=30))
    forget_planner_statistics(
        Lead, OptOut, SegmentTarget, SendRecipient, Audience, Campaign.audiences.through
    )

    started = time.monotonic()
    result = materialize_send(send.pk)
    seconds = time.monotonic() - started

    reached = set()
    for n in range(1, UNANALYSED_LEADS + 1):
        if n % 50 != 1 and n % 20 != 0:
            reached.add(n % distinct)
    reached -= set(range(0, distinct, 30))
    assert result.recipient_count == len(reached)
    assert seconds <= 20, f"{UNANALYSED_LEADS:,} leads took {seconds:.1f} s"
