"""Segments: explicit targets and dynamic filters, their size, and who a campaign reaches."""

import pytest

from audiences import segments
from audiences.models import Audience, Lead, SegmentTarget
from audiences.selectors import variable_names
from audiences.tasks import refresh_segment_size_task
from campaigns.materializer import materialize_send, preview_send
from campaigns.models import Campaign, SendRecipient
from campaigns.selectors import eligible_recipient_count
from messaging.models import Category
from setter.api.errors import BadRequest
from tests.factories import (
    AudienceFactory,
    CampaignFactory,
    LeadFactory,
    OptOutFactory,
    OrganizationFactory,
    SendFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return OrganizationFactory()


@pytest.fixture
def crm(org):
    """An uploaded audience of six GB leads, crm-0 … crm-5."""
    audience = AudienceFactory(organization=org, source=Audience.Source.CSV, size=6)
    for n in range(6):
        LeadFactory(audience=audience, external_id=f"crm-{n}", phone_e164=f"+44770090000{n}")
    return audience


def lead_ids(audience, *external_ids):
    return [Lead.objects.get(audience=audience, external_id=e).pk for e in external_ids]


def member_ids(segment):
    return sorted(segments.members(segment).values_list("external_id", flat=True))


def test_targets_are_added_once_and_counted_in_place(org, crm):
    segment = segments.create_segment(org, name="VIP")
    ids = lead_ids(crm, "crm-0", "crm-1", "crm-2")

    assert segments.add_targets(segment, ids) == 3
    assert segments.add_targets(segment, [*ids, *lead_ids(crm, "crm-3")]) == 1

    segment.refresh_from_db()
    assert (segment.source, segment.size) == (Audience.Source.TARGETS, 4)
    assert member_ids(segment) == ["crm-0", "crm-1", "crm-2", "crm-3"]
    assert segments.target_exists(segment, ids[0])
    assert not segments.target_exists(segment, lead_ids(crm, "crm-5")[0])


def test_unknown_or_other_organization_targets_fail_the_call_and_add_nothing(org, crm):
    segment = segments.create_segment(org, name="VIP")
    foreign = LeadFactory().pk  # another organization's lead
    missing = Lead.objects.order_by("-pk").first().pk + 1000

    with pytest.raises(segments.InvalidSegment) as error:
        segments.add_targets(segment, [*lead_ids(crm, "crm-0"), foreign, missing])

    assert str(error.value) == (
        f"unknown targets (no such lead in this organization): {foreign}, {missing}"
    )
    assert not SegmentTarget.objects.exists()
    segment.refresh_from_db()
    assert segment.size == 0


def test_removing_absent_targets_is_no_error(org, crm):
    segment = segments.create_segment(org, name="VIP")
    segments.add_targets(segment, lead_ids(crm, "crm-0", "crm-1"))

    removed = segments.remove_targets(segment, [*lead_ids(crm, "crm-1", "crm-2"), 10**12])

    segment.refresh_from_db()
    assert (removed, segment.size, member_ids(segment)) == (1, 1, ["crm-0"])
    assert Lead.objects.filter(audience=crm).count() == 6  # targets are not deleted


def test_an_uploaded_audience_also_takes_targets_and_removing_its_own_lead_deletes_it(org, crm):
    elsewhere = AudienceFactory(organization=org)
    extra = LeadFactory(audience=elsewhere, external_id="web-1")
    vip = segments.create_segment(org, name="VIP")
    segments.add_targets(vip, lead_ids(crm, "crm-5"))

    assert segments.add_targets(crm, [extra.pk, *lead_ids(crm, "crm-0")]) == 1  # owned: skipped
    removed = segments.remove_targets(crm, [extra.pk, *lead_ids(crm, "crm-5")])

    crm.refresh_from_db()
    vip.refresh_from_db()
    assert removed == 2
    assert member_ids(crm) == ["crm-0", "crm-1", "crm-2", "crm-3", "crm-4"]
    assert (crm.size, crm.count_ok) == (5, 5)
    assert not Lead.objects.filter(external_id="crm-5").exists()
    assert Lead.objects.filter(pk=extra.pk).exists()
    # The deleted lead also left the segment it was a target of.
    assert (vip.size, member_ids(vip)) == (0, [])


def test_a_dynamic_segment_is_its_filter_over_the_organization_and_counted_by_a_task(
    org, crm, django_capture_on_commit_callbacks
):
    LeadFactory(audience=AudienceFactory(organization=org), external_id="ie-1", region="IE")
    LeadFactory(external_id="other-org", region="IE")

    with django_capture_on_commit_callbacks() as callbacks:
        segment = segments.create_segment(org, name="Ireland", filter={"country": "IE"})
    refresh_segment_size_task(segment.pk)  # what the queued callback runs

    segment.refresh_from_db()
    assert len(callbacks) == 1
    assert (segment.source, segment.size, member_ids(segment)) == ("dynamic", 1, ["ie-1"])
    everyone = segments.create_segment(org, name="All", all_leads=True)
    assert len(member_ids(everyone)) == 7
    with pytest.raises(segments.SegmentConflict):
        segments.add_targets(segment, lead_ids(crm, "crm-0"))


def test_a_dynamic_filter_is_validated_when_saved(org):
    with pytest.raises(BadRequest) as error:
        segments.create_segment(org, name="x", filter={"country": {"$like": "I%"}})
    assert str(error.value.detail).startswith("filter.country.$like: unknown operator")
    with pytest.raises(segments.InvalidSegment):
        segments.create_segment(org, name="x", filter={"country": "IE"}, all_leads=True)
    assert not Audience.objects.exists()


def test_updating_a_dynamic_segment_swaps_filter_and_all_users(org, crm):
    segment = segments.create_segment(org, name="x", filter={"country": "IE"})

    segments.update_segment(segment, all_leads=True, name="everyone")
    assert (segment.name, segment.filter, segment.all_leads) == ("everyone", None, True)
    segments.update_segment(segment, filter={"external_id": "crm-1"})
    assert (segment.filter, segment.all_leads, member_ids(segment)) == (
        {"external_id": "crm-1"},
        False,
        ["crm-1"],
    )
    with pytest.raises(segments.InvalidSegment):
        segments.update_segment(segment, filter=None)
    with pytest.raises(segments.SegmentConflict):
        segments.update_segment(crm, filter={"country": "IE"})


@pytest.mark.parametrize(
    ("status", "refused"),
    [
        (Campaign.Status.DRAFT, False),
        (Campaign.Status.SCHEDULED, True),
        (Campaign.Status.RUNNING, True),
        (Campaign.Status.PAUSED, True),
        (Campaign.Status.COMPLETED, False),
    ],
)
def test_a_segment_in_use_by_an_active_campaign_cannot_be_deleted(org, crm, status, refused):
    campaign = CampaignFactory(organization=org, status=status)
    campaign.audiences.set([crm])

    if refused:
        with pytest.raises(segments.SegmentConflict) as error:
            segments.delete_segment(crm)
        assert f"used by campaign(s) {campaign.pk}" in str(error.value)
        assert Audience.objects.filter(pk=crm.pk).exists()
    else:
        segments.delete_segment(crm)
        assert not Audience.objects.filter(pk=crm.pk).exists()
        assert not Lead.objects.exists()


def test_a_campaign_reaches_owned_leads_targets_and_dynamic_members_once_per_phone(org, crm):
    """CSV audience ∪ explicit segment ∪ dynamic segment, minus opt-outs, one row per phone."""
    web = AudienceFactory(organization=org)
    ie = LeadFactory(audience=web, external_id="ie-1", region="IE", phone_e164="+353851000001")
    LeadFactory(audience=web, external_id="ie-bad", region="IE", phone_e164="",
                ingest_status=Lead.IngestStatus.INVALID_PHONE)  # fmt: skip
    gold = LeadFactory(audience=web, external_id="gold", variables={"tier": "gold"})
    same_phone = LeadFactory(audience=web, external_id="dup", phone_e164=gold.phone_e164)
    LeadFactory(audience=web, external_id="not-targeted")
    LeadFactory(external_id="other-org-ie", region="IE")
    explicit = segments.create_segment(org, name="VIP")
    segments.add_targets(explicit, [gold.pk, same_phone.pk, *lead_ids(crm, "crm-0")])
    dynamic = segments.create_segment(org, name="Ireland", filter={"country": "IE"})
    uploaded = AudienceFactory(organization=org)
    LeadFactory(audience=uploaded, external_id="upload-1")
    OptOutFactory(organization=org, phone_e164=crm.leads.get(external_id="crm-0").phone_e164)
    campaign = CampaignFactory(organization=org, status=Campaign.Status.SCHEDULED)
    campaign.audiences.set([uploaded, explicit, dynamic])
    send = SendFactory(campaign=campaign, category=Category.UTILITY)

    preview = preview_send(send)
    result = materialize_send(send.pk)

    reached = set(
        SendRecipient.objects.filter(send=send).values_list("lead__external_id", flat=True)
    )
    assert reached == {"upload-1", "gold", "ie-1"}
    assert result.recipient_count == preview.recipient_count == 3
    assert eligible_recipient_count(campaign, Category.UTILITY) == 3
    assert ie.pk in set(SendRecipient.objects.values_list("lead_id", flat=True))


def test_a_send_of_a_dynamic_segment_recounts_it(org, crm, django_capture_on_commit_callbacks):
    dynamic = segments.create_segment(org, name="All", all_leads=True)
    campaign = CampaignFactory(organization=org, status=Campaign.Status.SCHEDULED)
    campaign.audiences.set([dynamic])
    send = SendFactory(campaign=campaign)

    with django_capture_on_commit_callbacks() as callbacks:
        assert materialize_send(send.pk).recipient_count == 6
    assert len(callbacks) == 1


def test_a_campaign_of_only_empty_segments_reaches_nobody(org, crm):
    campaign = CampaignFactory(organization=org, status=Campaign.Status.SCHEDULED)
    campaign.audiences.set([segments.create_segment(org, name="empty")])

    assert materialize_send(SendFactory(campaign=campaign).pk).recipient_count == 0


def test_deleting_a_segment_keeps_its_leads_messages_and_shrinks_segments_targeting_them(org, crm):
    vip = segments.create_segment(org, name="VIP")
    segments.add_targets(vip, lead_ids(crm, "crm-0", "crm-1"))
    kept = AudienceFactory(organization=org)
    outsider = LeadFactory(audience=kept, external_id="kept")
    segments.add_targets(vip, [outsider.pk])
    campaign = CampaignFactory(organization=org, status=Campaign.Status.COMPLETED)
    send = SendFactory(campaign=campaign)
    message = SendRecipient.objects.create(
        send=send, lead=Lead.objects.get(external_id="crm-0"), phone_e164="+447700900000"
    )

    segments.delete_segment(crm)

    assert not Lead.objects.filter(audience_id=crm.pk).exists()
    vip.refresh_from_db()
    assert (vip.size, member_ids(vip)) == (1, ["kept"])
    message.refresh_from_db()
    assert (message.lead, message.phone_e164) == (None, "+447700900000")


def test_variable_names_are_every_key_some_lead_has():
    audience = AudienceFactory()
    LeadFactory(audience=audience, variables={"coupon": "A", "city": ""})
    LeadFactory(audience=audience, variables={"plan": "pro"})
    LeadFactory(audience=audience, variables={})
    LeadFactory(audience=audience, variables=["not", "an", "object"])
    LeadFactory(variables={"elsewhere": "x"})

    assert variable_names(Lead.objects.filter(audience=audience)) == {"coupon", "city", "plan"}
    assert variable_names(Lead.objects.none()) == set()
