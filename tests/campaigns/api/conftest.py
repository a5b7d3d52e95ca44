"""A partner's organization with a number, approved templates and a segment, and a client
that calls the campaign API with its key."""

import orjson
import pytest

from messaging.models import Category
from setter.services import create_api_key
from tests.factories import (
    AudienceFactory,
    LeadFactory,
    MessageTemplateFactory,
    OrganizationFactory,
    WhatsAppNumberFactory,
)


class Api:
    """The REST API as one organization's backend calls it."""

    def __init__(self, client, organization):
        self.client = client
        self.organization = organization
        self.key = create_api_key(organization, "backend")[1]

    def call(self, method: str, path: str, body=None):
        kwargs = {"headers": {"x-api-key": self.key}}
        if body is not None:
            kwargs |= {"data": orjson.dumps(body), "content_type": "application/json"}
        return getattr(self.client, method)(f"/api/v1/{path}", **kwargs)

    def post(self, path, body=None):
        return self.call("post", path, {} if body is None else body)

    def get(self, path):
        return self.call("get", path)

    def patch(self, path, body):
        return self.call("patch", path, body)

    def delete(self, path):
        return self.call("delete", path)


@pytest.fixture
def organization(db):
    return OrganizationFactory()


@pytest.fixture
def api(client, organization):
    return Api(client, organization)


@pytest.fixture
def sender(organization):
    return WhatsAppNumberFactory(organization=organization, phone_number_id="106540352242922")


@pytest.fixture
def sale_template(organization):
    return MessageTemplateFactory(
        organization=organization, name="spring_sale", body_text="Hi {{1}}, {{2}} off!"
    )


@pytest.fixture
def receipt_template(organization):
    return MessageTemplateFactory(
        organization=organization,
        name="receipt",
        category=Category.UTILITY,
        body_text="Order {{1}} shipped.",
    )


@pytest.fixture
def segment(organization):
    audience = AudienceFactory(organization=organization, name="Newsletter")
    for n in range(3):
        LeadFactory(audience=audience, first_name=f"Ann{n}", variables={"coupon": f"C{n}"})
    return audience


@pytest.fixture
def body(sender, sale_template, segment):
    """A valid create body: one marketing send to one segment, on a local time."""

    def make(**overrides):
        return {
            "name": "Spring sale",
            "senderId": sender.phone_number_id,
            "segmentIds": [str(segment.pk)],
            "productPolicyConfirmed": True,
            "sends": [
                {
                    "template": "spring_sale",
                    "parameters": ["{{ lead.first_name }}", "20%"],
                    "schedule": {
                        "localDate": "2031-03-01",
                        "localTime": "09:00",
                        "timeZone": "Europe/London",
                    },
                }
            ],
            **overrides,
        }

    return make
