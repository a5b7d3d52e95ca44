"""Fixtures shared by the campaign tests."""

import datetime as dt

import pytest
from django.utils import timezone

from campaigns import sends
from campaigns.materializer import materialize_send
from campaigns.models import Campaign, Send, TestPhone
from tests.factories import (
    AudienceFactory,
    CampaignFactory,
    LeadFactory,
    SendFactory,
    SendRecipientFactory,
)
from tests.support import STAFF_PHONE

UK_PHONES = [f"+4420794{n:05d}" for n in range(400)]


def scheduled_campaign(number, phones, **campaign_fields):
    """A scheduled campaign on `number` to one audience of a lead per phone (Ann, coupon C1)."""
    campaign = CampaignFactory(
        organization=number.organization,
        whatsapp_number=number,
        status=Campaign.Status.SCHEDULED,
        **campaign_fields,
    )
    audience = AudienceFactory(organization=number.organization)
    campaign.audiences.add(audience)
    for phone in phones:
        LeadFactory(
            audience=audience, phone_e164=phone, first_name="Ann", variables={"coupon": "C1"}
        )
    return campaign


def running_send(number, template, phones, **campaign_fields):
    """A send of `template` to a lead per phone, materialized and started now (sending): the
    dispatcher in the test's process delivers it against the sandbox."""
    send = SendFactory(
        campaign=scheduled_campaign(number, phones, **campaign_fields),
        template=template,
        parameter_mapping=["first_name", "variables.coupon"],
        max_messages_per_second=1000,
        scheduled_for=timezone.now() + dt.timedelta(seconds=30),
    )
    materialize_send(send.pk)
    Send.objects.filter(pk=send.pk).update(scheduled_for=timezone.now())
    assert sends.start_due_sends() == [send.pk]
    return Send.objects.get(pk=send.pk)


@pytest.fixture
def completed_send(number, marketing_template):
    """make(outcomes, **campaign fields): a completed send of a completed campaign whose
    recipients (UK leads) ended as `outcomes` [(status, error code)]."""

    def make(outcomes, **campaign_fields):
        campaign = scheduled_campaign(number, UK_PHONES[: len(outcomes)])
        Campaign.objects.filter(pk=campaign.pk).update(
            status=Campaign.Status.COMPLETED, **campaign_fields
        )
        send = SendFactory(
            campaign=campaign, template=marketing_template, status=Send.Status.COMPLETED
        )
        leads = campaign.audiences.get().leads.order_by("pk")
        for lead, (status, code) in zip(leads, outcomes, strict=True):
            SendRecipientFactory(
                send=send, lead=lead, phone_e164=lead.phone_e164, status=status, error_code=code
            )
        return Send.objects.get(pk=send.pk)

    return make


@pytest.fixture
def testable_send(number, marketing_template):
    """A draft send to two leads (Ann, Bob) on the sandbox's number, whose organization keeps
    STAFF_PHONE as its test phone."""
    campaign = CampaignFactory(organization=number.organization, whatsapp_number=number)
    audience = AudienceFactory(organization=number.organization)
    campaign.audiences.add(audience)
    for n, name in enumerate(["Ann", "Bob"]):
        LeadFactory(
            audience=audience,
            phone_e164=f"+4420794600{n:02d}",
            first_name=name,
            variables={"coupon": f"C{n}"},
        )
    TestPhone.objects.create(organization=number.organization, phone_e164=STAFF_PHONE)
    return SendFactory(
        campaign=campaign,
        template=marketing_template,
        parameter_mapping=["first_name", "variables.coupon"],
    )
