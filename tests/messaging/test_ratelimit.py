"""The shared rate limiter: exact spacing, several limits at once, shared by all workers."""

import os
import threading
import time
import uuid

import pytest

from messaging.ratelimit import (
    Limit,
    LocalRateLimiter,
    RedisRateLimiter,
    ThroughputPolicy,
    WaitTotals,
)
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
    (wait,) = limiter.take(limits).waits()
    return called - started + wait


def test_reservations_are_spaced_by_the_emission_interval(limiter):
    started = time.monotonic()
    slots = [reserve_at(limiter, [Limit("send:1", 20)], started) for _ in range(5)]

    # The first slot is now; each next one 50 ms after the previous.
    assert slots == pytest.approx([0, 0.05, 0.10, 0.15, 0.20], abs=JITTER)


def test_the_slowest_limit_decides_and_both_limits_advance(limiter):
    started = time.monotonic()
    first = reserve_at(limiter, [Limit("send:a", 1000), Limit("number:x", 10)], started)
    same_number = reserve_at(limiter, [Limit("send:b", 1000), Limit("number:x", 10)], started)
    same_send = reserve_at(limiter, [Limit("send:b", 1000), Limit("number:y", 10)], started)

    assert first == pytest.approx(0, abs=JITTER)
    assert same_number == pytest.approx(0.1, abs=JITTER)
    # send:b's next slot is 1 ms after its first; number:y is fresh: the send decides.
    assert same_send == pytest.approx(0.101, abs=JITTER)


def test_threads_sharing_a_limiter_never_exceed_the_rate(limiter):
    """Twelve senders on a 20/s limit for ~1.5 s: at most 21 in any one-second window."""
    stamps, lock = [], threading.Lock()

    def sender():
        for _ in range(3):
            (wait,) = limiter.take([Limit("send:shared", 20)]).waits()
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
    waits = limiter.take([Limit("send:batch", 100), Limit("number:batch", 20)], 4).waits()
    slots = [called - started + wait for wait in waits]
    after = reserve_at(limiter, [Limit("send:batch", 100)], started)

    assert slots == pytest.approx([0, 0.05, 0.10, 0.15], abs=JITTER)
    # The send's own limit continues 10 ms after the batch's last slot.
    assert after == pytest.approx(0.16, abs=JITTER)


def test_two_redis_clients_share_one_budget():
    """Workers on different machines each hold their own client: the limit is still one."""
    prefix = f"test:{uuid.uuid4().hex}:"
    first, second = RedisRateLimiter(REDIS_URL, prefix), RedisRateLimiter(REDIS_URL, prefix)
    started = time.monotonic()

    slots = [reserve_at(c, [Limit("send:9", 10)], started) for c in (first, second, first, second)]

    assert slots == pytest.approx([0, 0.1, 0.2, 0.3], abs=JITTER)


def test_a_grant_names_the_limit_that_held_it_back(limiter):
    behind_number = [Limit("send:2", 1000), Limit("number:1", 10)]
    limiter.take([Limit("send:1", 1000), Limit("number:1", 10)], 1)

    # number:1's next slot lies ahead: the number holds send 2 back.
    assert limiter.take(behind_number, 1, horizon=0).held_by == "number"
    # Nothing ahead: the slowest limit spaces the slots.
    assert limiter.take([Limit("send:3", 5), Limit("number:3", 80)], 2).held_by == "send"


def test_waits_added_by_dispatchers_are_counted_per_scope():
    limiter = RedisRateLimiter(REDIS_URL, prefix=f"test:{uuid.uuid4().hex}:")
    waits = {"send": WaitTotals(0.5, 2), "number": WaitTotals(0.25, 1)}

    limiter.add_waits(waits)
    limiter.add_waits({"send": WaitTotals(0.5, 1)})

    assert limiter.wait_totals() == {
        "number": pytest.approx((0.25, 1)),
        "send": pytest.approx((1.0, 3)),
    }


def test_the_in_process_limiter_keeps_no_wait_counters():
    limiter = LocalRateLimiter()
    limiter.add_waits({"send": WaitTotals(1.0, 1)})

    assert limiter.wait_totals() == {}


# --- Slots taken just in time ----------------------------------------------------------------


def test_a_horizon_grants_only_the_slots_of_the_next_moment(limiter):
    limits = [Limit("send:jit", 100)]  # a slot every 10 ms

    grant = limiter.take(limits, 50, horizon=0.045)
    later = limiter.take(limits, 50, horizon=0.0)

    assert grant.count == 5  # 0, 10, 20, 30 and 40 ms
    assert grant.spacing == pytest.approx(0.01)
    # Nothing free right now: no slot taken, and the wait until the next one is said.
    assert later.count == 0
    assert later.first_wait == pytest.approx(0.05, abs=JITTER)


def test_an_idle_limit_gives_no_burst_credit(limiter):
    limits = [Limit("send:idle", 10)]
    limiter.take(limits, 1)
    time.sleep(0.5)  # the limit is idle for 5 intervals

    grant = limiter.take(limits, 5, horizon=0.25)

    # Slots start now and stay 100 ms apart: the idle time is not sent in a burst.
    assert grant.count == 3
    assert grant.first_wait == pytest.approx(0, abs=JITTER)


# --- The adaptive throughput of a number ---------------------------------------------------


@pytest.fixture(params=["redis", "local"])
def adaptive(request):
    policy = ThroughputPolicy(
        window_seconds=0.2, recovery_per_second=0.5, max_cut=0.5, pause_seconds=0.1
    )
    if request.param == "local":
        return LocalRateLimiter(policy)
    return RedisRateLimiter(REDIS_URL, prefix=f"test:{uuid.uuid4().hex}:", policy=policy)


NUMBER = Limit("number:7", 400, adaptive=True)


def close_window(limiter, answers, refused):
    """Report answers, then let the window pass and report nothing, which closes it."""
    limiter.report(NUMBER, answers, refused)
    time.sleep(0.21)
    limiter.report(NUMBER, 0, 0)


def test_refusals_cut_the_rate_by_the_refused_share_once_per_window(adaptive):
    for _ in range(30):  # many threads' 130429s within one window…
        adaptive.report(NUMBER, 10, 2)
    time.sleep(0.21)
    adaptive.report(NUMBER, 0, 0)

    adapted = adaptive.adapted_rate(NUMBER)
    # …count once: the window refused 20%, so the rate drops by 20%, not 30 times.
    assert adapted.rate == pytest.approx(320, rel=0.1)
    assert adapted.reduced and adapted.refused_share == pytest.approx(0.2)
    assert adapted.cut_at is not None


def test_a_window_of_refusals_cuts_at_most_by_half(adaptive):
    close_window(adaptive, 10, 10)

    assert adaptive.adapted_rate(NUMBER).rate == pytest.approx(200, rel=0.1)


def test_the_rate_recovers_towards_the_cap(adaptive):
    close_window(adaptive, 10, 10)
    cut = adaptive.adapted_rate(NUMBER).rate
    time.sleep(0.4)  # half the cap regained per second: +80 msg/s

    recovered = adaptive.adapted_rate(NUMBER).rate
    assert recovered == pytest.approx(cut + 0.5 * 400 * (0.4 + 0.01), abs=25)
    time.sleep(1.2)
    assert adaptive.adapted_rate(NUMBER).rate == pytest.approx(400)


def test_the_adapted_rate_spaces_the_numbers_slots(adaptive):
    close_window(adaptive, 10, 10)  # 200 msg/s: a slot every 5 ms
    time.sleep(0.1)  # past the pause

    grant = adaptive.take([Limit("send:fast", 1000), NUMBER], 10, horizon=1)

    assert grant.spacing == pytest.approx(1 / 200, rel=0.25)


def test_a_refusal_pauses_the_number_once_from_now_never_piling_up(adaptive):
    for _ in range(60):  # a storm of 130429s from every thread
        adaptive.report(NUMBER, 1, 1)

    started = time.monotonic()
    (wait,) = adaptive.take([NUMBER]).waits()

    # One short pause counted from now, not 60 penalties stacked one after another.
    assert time.monotonic() - started + wait == pytest.approx(0.1, abs=0.05)


def test_answers_without_refusals_leave_the_rate_alone(adaptive):
    close_window(adaptive, 50, 0)

    assert not adaptive.adapted_rate(NUMBER).reduced
    assert adaptive.adapted_rate(NUMBER).rate == 400
