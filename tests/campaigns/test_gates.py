"""Scheduling enforces the onboarding gates, one message per failed gate, and changes
nothing when any fails."""

import datetime as dt

import pytest
from django.utils import timezone

from audiences.models import Audience, Lead, OptOut
from campaigns.models import Campaign, Send
from campaigns.selectors import eligible_recipient_count
from campaigns.services import CampaignTransitionError, scheduling_problems, transition_campaign
from messaging.models import Category, MessageTemplate, WhatsAppNumber
from tests.campaigns.editor import ready_campaign, refreshed
from tests.factories import (
    AudienceFactory,
    CampaignFactory,
    LeadFactory,
    MessageTemplateFactory,
    OptOutFactory,
    OrganizationFactory,
    SendFactory,
)

pytestmark = pytest.mark.django_db


def schedule_refused(campaign) -> list[str]:
    """Try to schedule; return the messages, after checking nothing changed."""
    with pytest.raises(CampaignTransitionError) as raised:
        transition_campaign(campaign, "schedule")
    stored = refreshed(campaign)
    assert stored.status == Campaign.Status.DRAFT
    assert campaign.status == Campaign.Status.DRAFT
    assert set(stored.sends.values_list("status", flat=True)) <= {Send.Status.PENDING}
    return raised.value.messages


def nth_send(campaign, n) -> Send:
    return campaign.sends.order_by("position", "pk")[n - 1]


def test_a_campaign_passing_every_gate_schedules():
    campaign = ready_campaign()
    assert scheduling_problems(campaign) == []

    transition_campaign(campaign, "schedule")

    assert refreshed(campaign).status == Campaign.Status.SCHEDULED


def test_a_campaign_without_sends_is_refused():
    campaign = ready_campaign(sends=0)

    assert schedule_refused(campaign) == ["The campaign has no sends"]


def test_a_campaign_without_audience_is_refused():
    campaign = ready_campaign()
    campaign.audiences.clear()

    assert schedule_refused(campaign) == ["The campaign has no audience"]


def test_an_audience_still_ingesting_is_refused():
    campaign = ready_campaign()
    campaign.audiences.update(status=Audience.Status.INGESTING, name="Spring list")

    assert schedule_refused(campaign) == ["The audience 'Spring list' is not ready (ingesting)"]


@pytest.mark.parametrize(
    "status",
    [
        MessageTemplate.Status.PENDING,
        MessageTemplate.Status.REJECTED,
        MessageTemplate.Status.PAUSED,
    ],
)
def test_a_template_not_approved_is_refused(status):
    campaign = ready_campaign()
    second = nth_send(campaign, 2)
    second.template = MessageTemplateFactory(
        organization=campaign.organization, name="promo", status=status
    )
    second.save()

    assert schedule_refused(campaign) == [f"Send 2: template 'promo' is {status}, not APPROVED"]


def test_a_template_of_another_category_is_refused():
    campaign = ready_campaign()
    first = nth_send(campaign, 1)
    first.template = MessageTemplateFactory(
        organization=campaign.organization, category=Category.UTILITY
    )
    first.save()

    assert schedule_refused(campaign) == [
        "Send 1: template category UTILITY does not match the send's category MARKETING"
    ]


def test_a_template_of_another_organization_is_refused():
    campaign = ready_campaign()
    first = nth_send(campaign, 1)
    first.template = MessageTemplateFactory(organization=OrganizationFactory(), name="theirs")
    first.save()

    assert schedule_refused(campaign) == [
        "Send 1: template 'theirs' belongs to another organization"
    ]


def test_a_parameter_mapping_that_does_not_fit_the_template_is_refused():
    campaign = ready_campaign()
    Send.objects.filter(pk=nth_send(campaign, 2).pk).update(parameter_mapping=["first_name"])

    assert schedule_refused(campaign) == [
        "Send 2: The template has 2 parameter(s) but the mapping gives 1."
    ]


def test_a_template_synced_since_with_a_header_parameter_is_refused_until_it_is_filled():
    campaign = ready_campaign(sends=1)
    template = nth_send(campaign, 1).template
    template.components = [
        {"type": "HEADER", "format": "TEXT", "text": "For {{1}}"},
        {"type": "BODY", "text": template.body_text},
    ]
    template.save()  # as a sync from Meta would: the stored mapping fills the body only

    assert schedule_refused(campaign) == [
        "Send 1: The template has 3 parameter(s) (2 in the body, header {{1}}) but the mapping "
        "gives 2: header {{1}} not filled."
    ]


def test_a_parameter_naming_a_variable_no_lead_has_is_refused_with_the_columns():
    """A mapping saved while the audience was ingesting is checked when it is scheduled."""
    campaign = ready_campaign()
    audience = campaign.audiences.get()
    audience.leads.update(variables={"coupon": "SPRING", "city": "Leeds"})
    mapping = ["{{ receiver.coupon }}", "variables.nope"]
    Send.objects.filter(pk=nth_send(campaign, 2).pk).update(parameter_mapping=mapping)

    assert schedule_refused(campaign) == [
        "Send 2: Parameter {{2}}: no lead of the audience has the variable 'nope' "
        "(the audience's columns: city, coupon)"
    ]
    Send.objects.filter(pk=nth_send(campaign, 2).pk).update(
        parameter_mapping=["{{ receiver.coupon }}", "variables.city"]
    )
    assert scheduling_problems(campaign) == []


def test_marketing_needs_the_numbers_mm_lite_terms():
    campaign = ready_campaign()
    WhatsAppNumber.objects.filter(pk=campaign.whatsapp_number_id).update(
        mm_lite_terms_accepted=False, display_phone_number="+1 555 0100"
    )

    assert schedule_refused(campaign) == [
        "The WhatsApp number +1 555 0100 has not accepted the MM Lite terms "
        "(required for MARKETING sends)"
    ]


def test_marketing_needs_the_product_policy_opt_in_confirmed():
    campaign = ready_campaign(product_policy_confirmed=False)

    assert schedule_refused(campaign) == [
        "Confirm that recipients opted in (product policy) before scheduling MARKETING sends"
    ]


def test_utility_sends_need_neither_mm_lite_terms_nor_the_opt_in_confirmation():
    campaign = ready_campaign(category=Category.UTILITY, product_policy_confirmed=False)
    WhatsAppNumber.objects.filter(pk=campaign.whatsapp_number_id).update(
        mm_lite_terms_accepted=False
    )

    transition_campaign(campaign, "schedule")

    assert refreshed(campaign).status == Campaign.Status.SCHEDULED


def add_leads(audience, count, **fields):
    Lead.objects.bulk_create(LeadFactory.build(audience=audience, **fields) for _ in range(count))


@pytest.mark.parametrize(("eligible", "allowed"), [(250, True), (251, False)])
def test_the_numbers_messaging_limit_must_cover_the_eligible_audience(eligible, allowed):
    campaign = ready_campaign(leads=0)
    WhatsAppNumber.objects.filter(pk=campaign.whatsapp_number_id).update(
        messaging_limit=WhatsAppNumber.MessagingLimit.TIER_250
    )
    audience = campaign.audiences.get()
    add_leads(audience, eligible)
    # None of these count: US numbers, invalid phones, opted-out phones.
    add_leads(audience, 30, ingest_status=Lead.IngestStatus.INELIGIBLE_GEO, region="US")
    add_leads(audience, 30, ingest_status=Lead.IngestStatus.INVALID_PHONE, phone_e164="")
    for lead in LeadFactory.build_batch(20, audience=audience):
        lead.save()
        OptOutFactory(organization=campaign.organization, phone_e164=lead.phone_e164)

    if allowed:
        transition_campaign(campaign, "schedule")
        assert refreshed(campaign).status == Campaign.Status.SCHEDULED
    else:
        assert schedule_refused(campaign) == [
            "The audience has 251 eligible recipients but the number's messaging limit is "
            "250 per 24 h"
        ]


def test_the_messaging_limit_message_groups_thousands():
    campaign = ready_campaign(leads=0)
    WhatsAppNumber.objects.filter(pk=campaign.whatsapp_number_id).update(
        messaging_limit=WhatsAppNumber.MessagingLimit.TIER_2K
    )
    add_leads(campaign.audiences.get(), 2_400)

    assert schedule_refused(campaign) == [
        "The audience has 2,400 eligible recipients but the number's messaging limit is "
        "2,000 per 24 h"
    ]


def test_an_unlimited_number_takes_any_audience():
    campaign = ready_campaign(leads=0)
    WhatsAppNumber.objects.filter(pk=campaign.whatsapp_number_id).update(
        messaging_limit=WhatsAppNumber.MessagingLimit.TIER_UNLIMITED
    )
    add_leads(campaign.audiences.get(), 300)

    assert scheduling_problems(refreshed(campaign)) == []


def test_a_send_in_the_past_is_refused():
    campaign = ready_campaign()
    past = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    Send.objects.filter(pk=nth_send(campaign, 2).pk).update(
        scheduled_for=past, local_date=past.date(), local_time=past.time()
    )

    messages = schedule_refused(campaign)

    assert "Send 2 is in the past (2026-01-05 09:00 UTC)" in messages


def test_sends_out_of_chronological_order_are_refused():
    campaign = ready_campaign(sends=3)
    second = nth_send(campaign, 2)
    Send.objects.filter(pk=nth_send(campaign, 3).pk).update(
        scheduled_for=second.scheduled_for - dt.timedelta(minutes=1)
    )

    assert schedule_refused(campaign) == [
        "Send 3 is scheduled before send 2: sends must be in chronological order"
    ]


def test_two_sends_at_the_same_instant_are_refused():
    campaign = ready_campaign(sends=2)
    first = nth_send(campaign, 1)
    Send.objects.filter(pk=nth_send(campaign, 2).pk).update(scheduled_for=first.scheduled_for)

    assert schedule_refused(campaign) == [
        "Send 2 is scheduled at the same time as send 1: sends must be in chronological order"
    ]


def test_every_failed_gate_is_reported_in_a_stable_order():
    campaign = ready_campaign(sends=2, product_policy_confirmed=False)
    campaign.audiences.clear()
    WhatsAppNumber.objects.filter(pk=campaign.whatsapp_number_id).update(
        mm_lite_terms_accepted=False, display_phone_number="+1 555 0199"
    )
    first = nth_send(campaign, 1)
    MessageTemplate.objects.filter(pk=first.template_id).update(
        name="promo", status=MessageTemplate.Status.PENDING
    )
    Send.objects.filter(pk=nth_send(campaign, 2).pk).update(
        scheduled_for=timezone.now() - dt.timedelta(days=1)
    )

    messages = schedule_refused(campaign)

    assert messages == scheduling_problems(refreshed(campaign))
    assert [m.split(" ")[0:2] for m in messages] == [
        ["The", "campaign"],
        ["Send", "1:"],
        ["Send", "2:"],
        ["Send", "2"],
        ["Send", "2"],
        ["The", "WhatsApp"],
        ["Confirm", "that"],
    ]


# --- The eligible audience ------------------------------------------------------------------


def test_eligible_count_is_distinct_phones_of_ok_leads_minus_the_organizations_opt_outs(
    django_assert_num_queries,
):
    org = OrganizationFactory()
    campaign = CampaignFactory(organization=org)
    first, second, unrelated = (AudienceFactory(organization=org) for _ in range(3))
    campaign.audiences.set([first, second])
    for phone in ["+447700900001", "+447700900002", "+447700900003", "+447700900004"]:
        LeadFactory(audience=first, phone_e164=phone)
    LeadFactory(audience=first, phone_e164="+447700900001", ingest_status="duplicate")
    LeadFactory(audience=second, phone_e164="+447700900001")  # in both audiences: one phone
    LeadFactory(audience=second, phone_e164="+12025550100", ingest_status="ineligible_geo")
    LeadFactory(audience=second, phone_e164="", ingest_status="invalid_phone")
    LeadFactory(audience=unrelated, phone_e164="+447700900099")
    OptOutFactory(organization=org, phone_e164="+447700900002", scope=OptOut.Scope.ALL)
    OptOutFactory(organization=org, phone_e164="+447700900003", scope=OptOut.Scope.MARKETING)
    OptOutFactory(organization=OrganizationFactory(), phone_e164="+447700900004")

    with django_assert_num_queries(2):  # the segments' dynamic filters, then the count
        marketing = eligible_recipient_count(campaign, Category.MARKETING)
    utility = eligible_recipient_count(campaign, Category.UTILITY)

    # Marketing: …01 and …04 (…02 stopped everything, …03 stopped marketing, US blocked).
    assert marketing == 2
    # Utility: …01, …03, …04 and the US number.
    assert utility == 4


def test_the_limit_gate_uses_the_larger_audience_of_the_campaigns_categories():
    campaign = ready_campaign(sends=1, leads=0)
    WhatsAppNumber.objects.filter(pk=campaign.whatsapp_number_id).update(
        messaging_limit=WhatsAppNumber.MessagingLimit.TIER_250
    )
    audience = campaign.audiences.get()
    add_leads(audience, 200)
    add_leads(audience, 60, ingest_status=Lead.IngestStatus.INELIGIBLE_GEO, region="US")
    assert scheduling_problems(refreshed(campaign)) == []  # marketing alone reaches 200
    template = MessageTemplateFactory(organization=campaign.organization, category=Category.UTILITY)
    SendFactory(
        campaign=campaign,
        position=5,
        category=Category.UTILITY,
        template=template,
        scheduled_for=timezone.now() + dt.timedelta(days=9),
    )

    assert scheduling_problems(refreshed(campaign)) == [
        "The audience has 260 eligible recipients but the number's messaging limit is 250 per 24 h"
    ]
