"""Duplicating a campaign (issue 15.3): a new draft that does what the original did, from the
next valid days on, and carries none of its recipients, filter payloads, events or stats. The
same service behind the admin (button and list action) and `POST …/duplicate`."""

import datetime as dt

import pytest
from django.urls import reverse

from audiences.segments import add_targets, create_segment, members
from campaigns.duplication import DUPLICATE_LEAD_TIME, duplicate_campaign
from campaigns.models import AudienceFilterEvent, Campaign, Send, SendRecipient
from campaigns.services import resolve_local_time
from tests.factories import (
    AudienceFactory,
    CampaignFactory,
    LeadFactory,
    OrganizationFactory,
    SendFactory,
    SendRecipientFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
UTC = dt.UTC


def local_send(campaign, day: dt.date, clock: str, zone: str, **fields) -> Send:
    """A send whose stored instant agrees with its local time, as the editor saves it."""
    local_time = dt.time.fromisoformat(clock)
    return SendFactory(
        campaign=campaign,
        local_date=day,
        local_time=local_time,
        time_zone=zone,
        scheduled_for=resolve_local_time(day, local_time, zone).utc,
        **fields,
    )


@pytest.fixture
def finished_campaign():
    """Completed ten days before NOW: two sends two days apart in different zones."""
    campaign = CampaignFactory(
        name="Spring sale", status=Campaign.Status.COMPLETED, description="Big one"
    )
    campaign.audiences.add(AudienceFactory(organization=campaign.organization))
    first = local_send(
        campaign,
        dt.date(2026, 11, 20),
        "10:00",
        "Europe/London",
        position=0,
        name="Teaser",
        event_filter_mode=Send.EventFilterMode.EXCLUDE,
        event_filter_type="purchase",
        event_filter_within_minutes=1440,
        audience_filter_mode=Send.AudienceFilterMode.WEBHOOK_FILTERED,
        max_messages_per_second=40,
        recipient_local_time=True,
        status=Send.Status.COMPLETED,
        recipient_count=2,
    )
    local_send(
        campaign, dt.date(2026, 11, 22), "18:30", "America/Sao_Paulo", position=1, name="Last call"
    )
    SendRecipientFactory.create_batch(2, send=first, status=SendRecipient.Status.DELIVERED)
    AudienceFilterEvent.objects.create(
        send=first,
        organization=campaign.organization,
        mode="include",
        payload_hash="h",
        external_ids=["a"],
        lead_count=1,
    )
    return campaign


NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_the_copy_is_a_draft_with_the_same_settings_and_nothing_of_what_happened(
    finished_campaign,
):
    duplicate = duplicate_campaign(finished_campaign, now=NOW)
    copy = duplicate.campaign

    assert copy.pk != finished_campaign.pk
    assert copy.api_id != finished_campaign.api_id
    assert (copy.status, copy.name, copy.description) == (
        Campaign.Status.DRAFT,
        "Spring sale (copy)",
        "Big one",
    )
    assert copy.organization == finished_campaign.organization
    assert copy.whatsapp_number == finished_campaign.whatsapp_number
    assert set(copy.audiences.all()) == set(finished_campaign.audiences.all())
    original = finished_campaign.sends.order_by("position")
    copied = copy.sends.order_by("position")
    kept = [
        "position",
        "name",
        "local_time",
        "time_zone",
        "recipient_local_time",
        "category",
        "template_id",
        "parameter_mapping",
        "audience_filter_mode",
        "event_filter_mode",
        "event_filter_type",
        "event_filter_within_minutes",
        "max_messages_per_second",
    ]
    assert [[getattr(s, f) for f in kept] for s in copied] == [
        [getattr(s, f) for f in kept] for s in original
    ]
    assert {s.status for s in copied} == {Send.Status.PENDING}
    assert {s.recipient_count for s in copied} == {0}
    assert not SendRecipient.objects.filter(send__campaign=copy).exists()
    assert not AudienceFilterEvent.objects.filter(send__campaign=copy).exists()
    assert SendRecipient.objects.filter(send__campaign=finished_campaign).count() == 2


def test_a_past_schedule_moves_by_the_fewest_whole_days_keeping_local_times_and_gaps(
    finished_campaign,
):
    duplicate = duplicate_campaign(finished_campaign, now=NOW)

    first, second = duplicate.campaign.sends.order_by("position")
    # 10:00 London on 2 December is under an hour away: the 3rd is the first valid day.
    assert duplicate.days_moved == 13
    assert (first.local_date, first.local_time) == (dt.date(2026, 12, 3), dt.time(10, 0))
    assert (second.local_date, second.local_time) == (dt.date(2026, 12, 5), dt.time(18, 30))
    for send in (first, second):
        assert (
            send.scheduled_for
            == resolve_local_time(send.local_date, send.local_time, send.time_zone).utc
        )
    assert first.scheduled_for >= NOW + DUPLICATE_LEAD_TIME
    assert first.scheduled_for - dt.timedelta(days=1) < NOW + DUPLICATE_LEAD_TIME
    assert "13 days later" in duplicate.schedule_note


def test_a_campaign_entirely_in_the_future_keeps_its_dates():
    campaign = CampaignFactory(status=Campaign.Status.SCHEDULED)
    send = local_send(campaign, dt.date(2027, 1, 15), "09:00", "Asia/Tokyo")

    duplicate = duplicate_campaign(campaign, now=NOW)

    [copied] = duplicate.campaign.sends.all()
    assert duplicate.days_moved == 0
    assert (copied.local_date, copied.scheduled_for) == (send.local_date, send.scheduled_for)
    assert duplicate.schedule_note == "Its sends keep their dates and local times."


def test_a_day_whose_clock_change_swallows_a_local_time_is_passed_over():
    campaign = CampaignFactory(status=Campaign.Status.COMPLETED)
    local_send(campaign, dt.date(2027, 3, 1), "01:30", "Europe/London")
    # The first day far enough from now is 28 March 2027, when 01:00–02:00 does not exist there.
    now = dt.datetime(2027, 3, 27, 12, 0, tzinfo=UTC)

    duplicate = duplicate_campaign(campaign, now=now)

    [copied] = duplicate.campaign.sends.all()
    assert copied.local_date == dt.date(2027, 3, 29)
    assert copied.scheduled_for == dt.datetime(2027, 3, 29, 0, 30, tzinfo=UTC)


def test_stop_at_moves_with_the_schedule(finished_campaign):
    finished_campaign.stop_at = dt.datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    finished_campaign.save()

    copy = duplicate_campaign(finished_campaign, now=NOW).campaign

    assert copy.stop_at == dt.datetime(2026, 12, 6, 0, 0, tzinfo=UTC)


def test_a_campaigns_own_lead_list_is_copied_not_shared():
    campaign = CampaignFactory()
    leads = LeadFactory.create_batch(
        3, audience=AudienceFactory(organization=campaign.organization)
    )
    lead_list = create_segment(campaign.organization, name="Leads of campaign x", hidden=True)
    add_targets(lead_list, [lead.pk for lead in leads[:2]])
    campaign.audiences.add(lead_list)

    copy = duplicate_campaign(campaign, now=NOW).campaign

    [copied_list] = copy.audiences.all()
    assert copied_list.pk != lead_list.pk
    assert copied_list.hidden
    assert copied_list.name == f"Leads of campaign {copy.api_id}"
    assert set(members(copied_list)) == set(leads[:2])
    assert copied_list.size == 2
    add_targets(lead_list, [leads[2].pk])
    assert set(members(copied_list)) == set(leads[:2])


# --- Admin -------------------------------------------------------------------------------


@pytest.fixture
def marketer_of(client):
    def log_in(campaign):
        client.force_login(UserFactory(organization=campaign.organization))
        return client

    return log_in


def test_the_duplicate_button_opens_the_copy_and_says_what_moved(finished_campaign, marketer_of):
    client = marketer_of(finished_campaign)
    url = reverse("admin:campaigns_campaign_duplicate", args=[finished_campaign.pk])

    page = client.get(reverse("admin:campaigns_campaign_change", args=[finished_campaign.pk]))
    assert url in page.content.decode()
    answer = client.post(url, follow=True)

    copy = Campaign.objects.exclude(pk=finished_campaign.pk).get()
    assert answer.redirect_chain[-1][0] == reverse(
        "admin:campaigns_campaign_change", args=[copy.pk]
    )
    [message] = [str(m) for m in answer.context["messages"]]
    assert f"duplicated as the draft '{copy.name}'" in message
    assert "moved" in message and "later, at the same local times" in message


def test_the_list_action_duplicates_every_selected_campaign(finished_campaign, marketer_of):
    other = CampaignFactory(organization=finished_campaign.organization)
    client = marketer_of(finished_campaign)

    client.post(
        reverse("admin:campaigns_campaign_changelist"),
        {"action": "duplicate_selected", "_selected_action": [finished_campaign.pk, other.pk]},
    )

    assert (
        Campaign.objects.filter(status=Campaign.Status.DRAFT, name__endswith="(copy)").count() == 2
    )


def test_the_button_refuses_another_organizations_campaign(finished_campaign, client):
    client.force_login(UserFactory(organization=OrganizationFactory()))

    answer = client.post(reverse("admin:campaigns_campaign_duplicate", args=[finished_campaign.pk]))

    assert answer.status_code == 404
    assert Campaign.objects.count() == 1
