"""Writing what a campaign body asked for, through the editor's own services.

One transaction per call: a create or an update either happens whole or not at all (a lead
list becomes a segment of its own, which is rolled back with the rest).
"""

from django.db import IntegrityError, transaction

from audiences.segments import add_targets, create_segment, delete_segment
from campaigns import duplication, selectors, services
from campaigns.models import Campaign
from setter.models import Organization

from .parsing import CampaignChanges, duplicate_body


class DuplicateCampaignId(Exception):
    """The organization already has a campaign with the id the partner chose."""


def create_campaign(organization: Organization, changes: CampaignChanges) -> Campaign:
    campaign = Campaign(organization=organization, **changes.fields)
    if changes.api_id:
        campaign.api_id = changes.api_id
    if not campaign.name:  # seed 003: optional; the editor needs something to list
        campaign.name = f"Campaign {campaign.api_id}"[: Campaign._meta.get_field("name").max_length]
    try:
        with transaction.atomic():
            if Campaign.objects.filter(organization=organization, api_id=campaign.api_id).exists():
                raise DuplicateCampaignId(campaign.api_id)
            _write(campaign, changes)
    except IntegrityError as error:  # the same id created concurrently
        raise DuplicateCampaignId(campaign.api_id) from error
    return campaign


def duplicate_from_body(data, campaign: Campaign) -> Campaign:
    """The copy a duplicate call's body asked for (its id and name, both optional)."""
    api_id, name = duplicate_body(data)
    try:
        with transaction.atomic():
            if (
                api_id
                and Campaign.objects.filter(
                    organization=campaign.organization, api_id=api_id
                ).exists()
            ):
                raise DuplicateCampaignId(api_id)
            return duplication.duplicate_campaign(campaign, name=name, api_id=api_id).campaign
    except IntegrityError as error:  # the same id created concurrently
        raise DuplicateCampaignId(api_id) from error


def update_campaign(campaign: Campaign, changes: CampaignChanges) -> Campaign:
    """Change a draft; refused with services.CampaignNotEditable once it left draft."""
    for name, value in changes.fields.items():
        setattr(campaign, name, value)
    with transaction.atomic():
        _write(campaign, changes)
    return campaign


def _write(campaign: Campaign, changes: CampaignChanges) -> None:
    audiences = changes.audiences
    if changes.lead_ids is not None:
        audiences = [_lead_segment(campaign, changes.lead_ids)]
    replaced = (
        []
        if audiences is None or not campaign.pk
        else list(campaign.audiences.filter(hidden=True).exclude(pk__in=[a.pk for a in audiences]))
    )
    services.save_campaign(campaign, audiences=audiences)
    for lead_list in replaced:  # nobody else can see or target a campaign's own lead list
        delete_segment(lead_list)
    if changes.sends is not None:
        for send in campaign.sends.all():
            services.delete_send(send)
        for send in changes.sends:  # in the body's order, each after the last, as in the admin
            send.campaign = campaign
            send.position = selectors.next_send_position(campaign)
            services.save_send(send)


def _lead_segment(campaign: Campaign, lead_ids: list[int]):
    """The campaign's explicit lead list as a hidden segment of its own (seed 003's
    user_ids): the materializer reads one kind of target, segments."""
    segment = create_segment(
        campaign.organization,
        name=f"Leads of campaign {campaign.api_id}"[:200],
        description="Created for the leads a campaign was given directly (userIds / leadIds).",
        hidden=True,
    )
    add_targets(segment, lead_ids)
    return segment
