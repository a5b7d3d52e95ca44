"""The materializer: who a send goes to, computed once, in the database."""

import datetime as dt
import random
import threading

import pytest
from django.db import connection
from django.test.utils import override_settings
from django.utils import timezone

from audiences.models import Lead, OptOut
from campaigns.materializer import due_send_ids, materialize_due_sends, materialize_send
from campaigns.models import AudienceFilterEvent, Campaign, Send, SendRecipient
from messaging.models import Category
from tests.factories import (
    AudienceFactory,
    CampaignFactory,
    LeadEventFactory,
    LeadFactory,
    OptOutFactory,
    OrganizationFactory,
    SendFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

STATUS_WEIGHTS = {
    Lead.IngestStatus.OK: 6,
    Lead.IngestStatus.INELIGIBLE_GEO: 2,
    Lead.IngestStatus.DUPLICATE: 1,
    Lead.IngestStatus.INVALID_PHONE: 1,
}


def build_world(seed):
    """A random but reproducible organization: two audiences sharing phones, opt-outs of
    both scopes, events of several types and times, and a second organization whose
    opt-outs and events use the same phones (and must not count)."""
    rng = random.Random(seed)
    org, other_org = OrganizationFactory(), OrganizationFactory()
    campaign = CampaignFactory(organization=org, status=Campaign.Status.SCHEDULED)
    audiences = [AudienceFactory(organization=org) for _ in range(2)]
    campaign.audiences.set(audiences)
    unrelated_audience = AudienceFactory(organization=org)
    phones = [f"+4420794600{n:02d}" for n in range(60)]
    external_ids = [f"ext-{n}" for n in range(30)] + [f"EXT-{n}" for n in range(5)] + [""]
    leads = []
    for row in range(150):
        status = rng.choices(list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values()))[0]
        phone = "" if status == Lead.IngestStatus.INVALID_PHONE else rng.choice(phones)
        leads.append(
            LeadFactory(
                audience=rng.choice(audiences),
                row_number=row + 1,
                phone_e164=phone,
                external_id=rng.choice(external_ids),
                ingest_status=status,
            )
        )
    LeadFactory(audience=unrelated_audience, phone_e164="+442079469999")
    opt_outs = set()
    for phone in rng.sample(phones, 15):
        scope = rng.choice([OptOut.Scope.ALL, OptOut.Scope.MARKETING])
        OptOutFactory(organization=org, phone_e164=phone, scope=scope)
        opt_outs.add((phone, scope))
    for phone in rng.sample(phones, 15):
        OptOutFactory(organization=other_org, phone_e164=phone)
    return rng, org, other_org, campaign, leads, phones, external_ids, opt_outs


def expected_phones(leads, opt_outs, category, filter_event, event_filter, events, fire_at):
    """The recipient set computed independently, row by row, from the product rules."""
    marketing = category == Category.MARKETING
    allowed = {Lead.IngestStatus.OK} | (set() if marketing else {Lead.IngestStatus.INELIGIBLE_GEO})
    blocked_scopes = {OptOut.Scope.ALL} | ({OptOut.Scope.MARKETING} if marketing else set())
    opted_out = {phone for phone, scope in opt_outs if scope in blocked_scopes}
    result = set()
    for lead in leads:
        if lead.ingest_status not in allowed or not lead.phone_e164 or lead.phone_e164 in opted_out:
            continue
        if filter_event is not None:
            mode, ids, filter_phones = filter_event
            matched = (
                lead.external_id and lead.external_id in ids
            ) or lead.phone_e164 in filter_phones
            if matched != (mode == "include"):
                continue
        if event_filter is not None:
            mode, event_type, within = event_filter
            has_event = any(
                phone == lead.phone_e164
                and kind == event_type
                and (within is None or fire_at - dt.timedelta(minutes=within) <= at <= fire_at)
                for phone, kind, at in events
            )
            if has_event != (mode == "include"):
                continue
        result.add(lead.phone_e164)
    return result


SCENARIOS = [
    # (category, filter mode, event filter)
    (Category.MARKETING, None, None),
    (Category.UTILITY, None, None),
    (Category.MARKETING, "include", None),
    (Category.UTILITY, "exclude", None),
    (Category.MARKETING, None, ("exclude", "purchase", None)),
    (Category.MARKETING, None, ("include", "webinar", 120)),
    (Category.UTILITY, "include", ("exclude", "webinar", 120)),
    (Category.MARKETING, "exclude", ("include", "purchase", None)),
]


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("category,filter_mode,event_filter", SCENARIOS)
def test_materialized_set_equals_the_independently_computed_set(
    seed, category, filter_mode, event_filter
):
    rng, org, other_org, campaign, leads, phones, external_ids, opt_outs = build_world(seed)
    fire_at = timezone.now().replace(microsecond=0) + dt.timedelta(seconds=30)
    send = SendFactory(campaign=campaign, category=category, scheduled_for=fire_at)

    events = []
    for _ in range(80):
        phone = rng.choice(phones)
        kind = rng.choice(["purchase", "webinar", "Purchase"])
        at = fire_at - dt.timedelta(minutes=rng.randint(-10, 300))
        for event_org in (org, other_org):
            LeadEventFactory(
                organization=event_org, phone_e164=phone, event_type=kind, occurred_at=at
            )
        events.append((phone, kind, at))
    if event_filter is not None:
        send.event_filter_mode, send.event_filter_type, send.event_filter_within_minutes = (
            event_filter
        )
        events = list(set(events))

    latest = None
    if filter_mode is not None:
        send.audience_filter_mode = Send.AudienceFilterMode.WEBHOOK_FILTERED
        base = timezone.now() - dt.timedelta(minutes=30)
        for minutes in (0, 5):  # an older event first: only the latest one counts
            ids = rng.sample([e for e in external_ids if e], 10)
            filter_phones = rng.sample(phones, 10)
            event = AudienceFilterEvent.objects.create(
                send=send,
                organization=org,
                mode=filter_mode
                if minutes
                else ("exclude" if filter_mode == "include" else "include"),
                payload_hash=f"hash-{minutes}",
                external_ids=ids,
                phones_e164=filter_phones,
                lead_count=20,
            )
            AudienceFilterEvent.objects.filter(pk=event.pk).update(
                received_at=base + dt.timedelta(minutes=minutes)
            )
            latest = (filter_mode, set(ids), set(filter_phones))
    send.save()

    result = materialize_send(send.pk)

    expected = expected_phones(
        leads, opt_outs, category, latest, event_filter, events, send.scheduled_for
    )
    recipients = list(SendRecipient.objects.filter(send=send).values_list("phone_e164", flat=True))
    assert len(recipients) == len(set(recipients)), "one row per phone"
    assert set(recipients) == expected
    assert result.recipient_count == len(expected)
    send.refresh_from_db()
    assert send.status == Send.Status.MATERIALIZED
    assert send.recipient_count == len(expected)


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
