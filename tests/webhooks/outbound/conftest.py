"""A partner's webhook receiver on a free port, and endpoints pointing at it."""

import orjson
import pytest

from tests.factories import OrganizationFactory
from tests.support import RecordingReceiver
from webhooks.outbound import services


class PartnerReceiver(RecordingReceiver):
    """A partner's endpoint for our outbound events."""

    def __init__(self):
        super().__init__("/hooks/setter")

    def events(self) -> list[dict]:
        return [orjson.loads(body) for body in self.bodies()]


@pytest.fixture
def receiver():
    partner = PartnerReceiver()
    yield partner
    partner.close()


@pytest.fixture
def organization(db):
    return OrganizationFactory()


@pytest.fixture
def endpoint(organization, receiver):
    return services.create_endpoint(organization, receiver.url, description="CRM")


@pytest.fixture
def fast_retries(settings):
    """Standard Webhooks' schedule shape, compressed: the test moves `now` instead of waiting."""
    settings.OUTBOUND_WEBHOOK_RETRY_SCHEDULE = [0, 5, 300]
    settings.OUTBOUND_WEBHOOK_TIMEOUT_SECONDS = 5
