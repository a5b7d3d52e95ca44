"""Fixtures shared by the campaign tests."""

import pytest

from campaigns.models import TestPhone
from tests.factories import AudienceFactory, CampaignFactory, LeadFactory, SendFactory
from tests.support import STAFF_PHONE


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
