"""Deliveries that woke too late for their rate-limit slot take fresh ones: together, one
limiter round trip for all those of one turn of the loop, and at the limit's own spacing."""

import asyncio

import pytest

from campaigns.dispatcher import DispatchRun, FreshSlots
from messaging.ratelimit import Limit, LocalRateLimiter


class CountingLimiter(LocalRateLimiter):
    def __init__(self):
        super().__init__()
        self.takes: list[int] = []

    def take(self, limits, want=1, *, horizon=None):
        self.takes.append(want)
        return super().take(limits, want, horizon=horizon)


def test_late_deliveries_of_one_turn_share_one_take_at_the_limits_spacing(monkeypatch):
    limiter = CountingLimiter()
    monkeypatch.setattr("campaigns.dispatcher.slots.get_rate_limiter", lambda: limiter)
    fresh = FreshSlots([Limit("send:fresh-slots", 50.0)])

    async def five_late_then_one():
        together = await asyncio.gather(*(fresh.slot() for _ in range(5)))
        alone = await fresh.slot()
        return together, alone

    together, alone = asyncio.run(five_late_then_one())

    assert limiter.takes == [5, 1]
    gaps = [later - earlier for earlier, later in zip(together, together[1:], strict=False)]
    assert all(abs(gap - 1 / 50) < 1e-3 for gap in gaps)
    assert alone >= together[-1] + 1 / 50 - 1e-3


def test_a_limiter_that_fails_fails_every_waiting_delivery(monkeypatch):
    class Down(LocalRateLimiter):
        def take(self, limits, want=1, *, horizon=None):
            raise ConnectionError("redis is restarting")

    monkeypatch.setattr("campaigns.dispatcher.slots.get_rate_limiter", lambda: Down())
    fresh = FreshSlots([Limit("send:fresh-slots-down", 50.0)])

    async def three_late():
        return await asyncio.gather(*(fresh.slot() for _ in range(3)), return_exceptions=True)

    results = asyncio.run(three_late())

    assert [type(r) for r in results] == [ConnectionError] * 3


@pytest.mark.parametrize(
    "rate, concurrency, late_after",
    [
        (400, 200, 0.005),  # 200 requests at once would be half a second of this rate
        (10_000, 200, 0.005),  # 20 ms of it
        (40_000, 200, float("inf")),  # 5 ms: no more than a late delivery may bunch anyway
        (100_000, 200, float("inf")),
    ],
)
def test_a_late_start_takes_a_fresh_slot_only_where_lateness_could_make_a_burst(
    rate, concurrency, late_after, settings
):
    settings.DISPATCH_LATE_SLOT_SECONDS = 0.005
    grant = LocalRateLimiter().take([Limit("send:late", float(rate))], 10)
    assert DispatchRun._late_after(grant, concurrency) == late_after
