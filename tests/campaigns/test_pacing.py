"""A send's rate as the marketer sees it: configured, effective, and why they differ."""

import time

import pytest

from campaigns.pacing import number_limit, send_rate
from messaging.ratelimit import get_rate_limiter
from tests.factories import SendFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def send():
    """A send at 80/s on a number of 80/s, its number's limiter state fresh."""
    send = SendFactory(max_messages_per_second=80)
    key = number_limit(send.campaign.whatsapp_number).key
    get_rate_limiter().reset([key])
    yield send
    get_rate_limiter().reset([key])


def test_a_send_within_its_numbers_throughput_goes_at_its_own_rate(send):
    assert send_rate(send).as_json() == {"configured": 80, "effective": 80.0, "reason": None}


def test_meta_throttling_shows_as_the_reason_for_a_slower_send(send):
    limiter, limit = get_rate_limiter(), number_limit(send.campaign.whatsapp_number)
    limiter.report(limit, 100, 50)  # half the answers of a window were 130429
    time.sleep(limiter.policy.window_seconds + 0.01)
    limiter.report(limit, 0, 0)  # the window closes at the first report after it

    rate = send_rate(send)

    assert rate.configured == 80
    assert rate.effective < 80
    assert "130429" in rate.reason and "50%" in rate.reason
