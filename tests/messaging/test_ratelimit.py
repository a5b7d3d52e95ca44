"""The shared rate limiter: exact spacing, several limits at once, shared by all workers."""

import os
import threading
import time
import uuid

import pytest

from messaging.ratelimit import LocalRateLimiter, RedisRateLimiter
from messaging.sandbox.stats import max_in_any_window

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(params=["redis", "local"])
def limiter(request):
    if request.param == "local":
        return LocalRateLimiter()
    return RedisRateLimiter(REDIS_URL, prefix=f"test:{uuid.uuid4().hex}:")


# Slots are measured on the caller's clock, which also counts the round trip to Redis: on
# a loaded machine that varies by several milliseconds, far below the intervals checked.
JITTER = 0.02


def reserve_at(limiter, limits, started):
    """The slot a reservation got, as seconds after `started` on the caller's clock."""
    called = time.monotonic()
    (wait,) = limiter.reserve(limits)
    return called - started + wait


def test_reservations_are_spaced_by_the_emission_interval(limiter):
    started = time.monotonic()
    slots = [reserve_at(limiter, [("send:1", 20)], started) for _ in range(5)]

    # The first slot is now; each next one 50 ms after the previous.
    assert slots == pytest.approx([0, 0.05, 0.10, 0.15, 0.20], abs=JITTER)


def test_the_slowest_limit_decides_and_both_limits_advance(limiter):
    started = time.monotonic()
    first = reserve_at(limiter, [("send:a", 1000), ("number:x", 10)], started)
    same_number = reserve_at(limiter, [("send:b", 1000), ("number:x", 10)], started)
    same_send = reserve_at(limiter, [("send:b", 1000), ("number:y", 10)], started)

    assert first == pytest.approx(0, abs=JITTER)
    assert same_number == pytest.approx(0.1, abs=JITTER)
    # send:b's next slot is 1 ms after its first; number:y is fresh: the send decides.
    assert same_send == pytest.approx(0.101, abs=JITTER)


def test_threads_sharing_a_limiter_never_exceed_the_rate(limiter):
    """Twelve senders on a 20/s limit for ~1.5 s: at most 21 in any one-second window."""
    stamps, lock = [], threading.Lock()

    def sender():
        for _ in range(3):
            (wait,) = limiter.reserve([("send:shared", 20)])
            time.sleep(wait)
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=sender) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(stamps) == 36
    assert max_in_any_window(stamps) <= 21
    assert sorted(stamps)[-1] - sorted(stamps)[0] >= 35 * 0.05 - 0.02


def test_a_batch_of_slots_in_one_reservation_is_spaced_by_the_slowest_limit(limiter):
    started = time.monotonic()
    called = time.monotonic()
    waits = limiter.reserve([("send:batch", 100), ("number:batch", 20)], 4)
    slots = [called - started + wait for wait in waits]
    after = reserve_at(limiter, [("send:batch", 100)], started)

    assert slots == pytest.approx([0, 0.05, 0.10, 0.15], abs=JITTER)
    # The send's own limit continues 10 ms after the batch's last slot.
    assert after == pytest.approx(0.16, abs=JITTER)


def test_two_redis_clients_share_one_budget():
    """Workers on different machines each hold their own client: the limit is still one."""
    prefix = f"test:{uuid.uuid4().hex}:"
    first, second = RedisRateLimiter(REDIS_URL, prefix), RedisRateLimiter(REDIS_URL, prefix)
    started = time.monotonic()

    slots = [reserve_at(c, [("send:9", 10)], started) for c in (first, second, first, second)]

    assert slots == pytest.approx([0, 0.1, 0.2, 0.3], abs=JITTER)


def test_waits_are_counted_against_the_limit_that_held_the_batch_back():
    limiter = RedisRateLimiter(REDIS_URL, prefix=f"test:{uuid.uuid4().hex}:")

    limiter.reserve([("send:1", 100), ("number:1", 10)], 3)  # spaced by the number: 0, .1, .2 s
    limiter.reserve([("send:2", 10), ("number:1", 1000)], 1)  # behind number:1's slots, 0.3 s
    limiter.reserve([("send:1", 100), ("number:2", 10)], 1, record=False)  # a penalty: no wait
    limiter.reserve([("send:3", 100)], 1)  # a free slot: no wait

    totals = limiter.wait_totals()
    assert set(totals) == {"number"}
    assert totals["number"].count == 3
    assert totals["number"].seconds == pytest.approx(0.1 + 0.2 + 0.3, abs=JITTER)


def test_waits_of_a_send_behind_its_own_rate_count_against_the_send():
    limiter = RedisRateLimiter(REDIS_URL, prefix=f"test:{uuid.uuid4().hex}:")

    limiter.reserve([("send:1", 20), ("number:1", 80)], 2)  # 0 and 0.05 s
    limiter.reserve([("send:1", 20), ("number:1", 80)], 2)  # 0.10 and 0.15 s

    assert limiter.wait_totals() == {"send": pytest.approx((0.30, 3), abs=JITTER)}


def test_the_in_process_limiter_keeps_no_wait_counters():
    limiter = LocalRateLimiter()
    limiter.reserve([("send:1", 1)], 3)

    assert limiter.wait_totals() == {}
