"""Rate limiting shared by every worker: GCRA slots taken atomically in Redis, and the
number's throughput adapted to what Meta accepts.

A caller takes the next free slots on several limits at once (the send's
max_messages_per_second and the number's throughput) and is told when the first one falls.
Slots are taken just in time: only those inside a short horizon, so a send that stops holds
no slot that another send on the same number could use. Slots follow each other at the
slowest limit's interval, so no one-second window ever holds more than the rate allows, and
a limit that was idle gives no burst credit: the next slot is never earlier than now. Time
comes from the Redis server, the one clock all workers share.

The number's limit is adaptive. Meta answers 130429 when a number sends faster than Meta
allows at that moment, which happens every day at high throughput. Each window (about a
second) the dispatchers report how many answers they got and how many were 130429; a window
with refusals cuts the number's rate by the refused share (at most by half), and the rate
then recovers linearly towards the configured cap. However many deliveries see a 130429 in one
window, the number pauses at most once, for a moment, counted from now: penalties never
pile up into minutes of silence.

A grant names the limit that held it back. Dispatchers add up how long they waited with
work in hand, per limit scope, into one Redis hash, so /metrics can tell whether sends queue
behind their own rate or behind their number's throughput.

The embedded shape (one worker process, no Redis) uses LocalRateLimiter, the same
algorithm behind a lock. It keeps no wait counters: its worker is another process than the
web serving /metrics, so in-memory counts would never reach a scrape.
"""

import datetime as dt
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple, cast

from django.conf import settings

NO_HORIZON = 10**15  # microseconds: "every slot asked for, however far ahead"


class Limit(NamedTuple):
    """One rate a slot must respect. `key` reads "scope:id" ("send:12", "number:3");
    `adaptive` limits (a number's throughput) follow Meta's 130429 answers."""

    key: str
    rate: float
    adaptive: bool = False


class Grant(NamedTuple):
    """`count` slots, the first `first_wait` seconds from now, then every `spacing` seconds.
    With count 0, first_wait says when the next slot will be free. `held_by`: the scope of
    the limit that decided ("send" or "number")."""

    # The field shadows tuple.count(); no caller counts a Grant's items.
    count: int  # type: ignore[assignment]
    first_wait: float
    spacing: float
    held_by: str = ""

    def waits(self) -> list[float]:
        return [self.first_wait + i * self.spacing for i in range(self.count)]


class WaitTotals(NamedTuple):
    seconds: float
    count: int  # type: ignore[assignment]  # shadows tuple.count(), as Grant's does


class AdaptedRate(NamedTuple):
    """A number's rate now; `cut_at`/`refused_share` tell why it is below the cap."""

    rate: float
    cap: float
    cut_at: dt.datetime | None = None
    refused_share: float = 0.0

    @property
    def reduced(self) -> bool:
        return self.rate < self.cap - 1e-6


@dataclass(frozen=True)
class ThroughputPolicy:
    """How the adaptive limit reacts to Meta's 130429 (the settings, in one place)."""

    window_seconds: float = 1.0
    recovery_per_second: float = 0.2  # share of the cap regained per second
    max_cut: float = 0.5  # at most half the rate per window
    pause_seconds: float = 0.1
    floor: float = 1.0

    @classmethod
    def from_settings(cls) -> "ThroughputPolicy":
        return cls(
            window_seconds=settings.THROUGHPUT_WINDOW_SECONDS,
            recovery_per_second=settings.THROUGHPUT_RECOVERY_PER_SECOND,
            max_cut=settings.THROUGHPUT_MAX_CUT,
            pause_seconds=settings.THROUGHPUT_PAUSE_SECONDS,
        )


def limit_scope(key: str) -> str:
    """ "send" for "send:12", "number:3" → "number": what a wait is counted against."""
    return key.split(":", 1)[0]


def _interval_us(rate: float) -> int:
    return max(1, int(round(1_000_000 / rate)))


# KEYS: per limit its slot key and its adaptive-state key. ARGV: want, n, horizon µs,
# recovery share per second, then per limit: rate, adaptive flag. Returns {count, first
# wait µs, spacing µs, the deciding limit's index}: the limit whose slot was furthest ahead,
# or, when none was ahead of now, the slowest one.
_TAKE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local want, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local horizon, recovery = tonumber(ARGV[3]), tonumber(ARGV[4])
local slot, spacing, ahead, slowest = now, 0, 0, 1
local intervals = {}
for i = 1, n do
  local base = 4 + (i - 1) * 2
  local cap = tonumber(ARGV[base + 1])
  local rate = cap
  if ARGV[base + 2] == '1' then
    local state = redis.call('HMGET', KEYS[2 * i], 'rate', 'at')
    if state[1] then
      rate = math.min(cap, tonumber(state[1]) + recovery * cap * (now - tonumber(state[2])) / 1000000)
    end
  end
  local interval = math.max(1, math.floor(1000000 / rate + 0.5))
  intervals[i] = interval
  local tat = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  if tat > slot then slot = tat; ahead = i end
  if interval > spacing then spacing = interval; slowest = i end
end
local first = slot - now
local decider = ahead > 0 and ahead or slowest
if first > horizon then return {0, first, spacing, decider} end
local count = math.min(want, math.floor((horizon - first) / spacing) + 1)
local last = slot + (count - 1) * spacing
for i = 1, n do
  local next_tat = last + intervals[i]
  redis.call('SET', KEYS[2 * i - 1], string.format('%d', next_tat), 'PX', math.floor((next_tat - now) / 1000) + 60000)
end
return {count, first, spacing, decider}
"""

# KEYS: the limit's slot key, its adaptive-state key. ARGV: cap, answers, refused, window µs,
# pause µs, recovery share per second, max cut, floor.
_REPORT_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cap, answers, refused = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local window, pause, recovery = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local max_cut, floor = tonumber(ARGV[7]), tonumber(ARGV[8])
local s = redis.call('HMGET', KEYS[2], 'rate', 'at', 'start', 'answers', 'refused', 'paused')
local rate = cap
if s[1] then rate = math.min(cap, tonumber(s[1]) + recovery * cap * (now - tonumber(s[2])) / 1000000) end
local start = tonumber(s[3] or now)
local total = tonumber(s[4] or 0) + answers
local refusals = tonumber(s[5] or 0) + refused
if refused > 0 and tonumber(s[6] or -1) ~= start then
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if now + pause > tat then
    redis.call('SET', KEYS[1], string.format('%d', now + pause), 'PX', math.floor(pause / 1000) + 60000)
  end
  redis.call('HSET', KEYS[2], 'paused', string.format('%d', start))
end
if now - start >= window then
  if refusals > 0 then
    local share = math.min(1, refusals / math.max(total, 1))
    local cut = math.max(floor, rate * (1 - math.min(max_cut, share)))
    redis.call('HSET', KEYS[2], 'rate', string.format('%.6f', cut), 'at', string.format('%d', now),
      'cut_at', string.format('%d', now), 'share', string.format('%.6f', share))
  elseif s[1] and rate >= cap then
    redis.call('HDEL', KEYS[2], 'rate', 'at', 'cut_at', 'share')
  end
  redis.call('HSET', KEYS[2], 'start', string.format('%d', now), 'answers', 0, 'refused', 0)
else
  redis.call('HSET', KEYS[2], 'start', string.format('%d', start), 'answers', total, 'refused', refusals)
end
redis.call('PEXPIRE', KEYS[2], 3600000)
return 1
"""


class RedisRateLimiter:
    WAITS_KEY = "waits"

    def __init__(
        self, url: str, prefix: str = "setter:rate:", policy: ThroughputPolicy | None = None
    ):
        import redis

        self.redis = redis.Redis.from_url(url)
        self.prefix = prefix
        self.policy = policy or ThroughputPolicy()
        self._take = self.redis.register_script(_TAKE_SCRIPT)
        self._report = self.redis.register_script(_REPORT_SCRIPT)

    def _state_key(self, key: str) -> str:
        return f"{self.prefix}adapt:{key}"

    def take(
        self, limits: Sequence[Limit], want: int = 1, *, horizon: float | None = None
    ) -> Grant:
        """Up to `want` slots on every limit whose times fall within `horizon` seconds of
        now (every slot asked for when None), in one round trip."""
        keys = [
            k for limit in limits for k in (self.prefix + limit.key, self._state_key(limit.key))
        ]
        args: list = [
            want,
            len(limits),
            NO_HORIZON if horizon is None else int(horizon * 1_000_000),
            self.policy.recovery_per_second,
        ]
        for limit in limits:
            args += [float(limit.rate), int(limit.adaptive)]
        count, first, spacing, decider = self._take(keys=keys, args=args)
        scope = limit_scope(limits[int(decider) - 1].key)
        return Grant(int(count), int(first) / 1_000_000, int(spacing) / 1_000_000, scope)

    def add_waits(self, waits: dict[str, WaitTotals]) -> None:
        """Add dispatchers' waits (per limit scope) to the counters behind /metrics."""
        if not waits:
            return
        pipe = self.redis.pipeline(transaction=False)
        for scope, totals in waits.items():
            pipe.hincrbyfloat(self.prefix + self.WAITS_KEY, f"{scope}:seconds", totals.seconds)
            pipe.hincrby(self.prefix + self.WAITS_KEY, f"{scope}:count", totals.count)
        pipe.execute()

    def report(self, limit: Limit, answers: int, refused: int) -> None:
        """What Meta answered on this adaptive limit lately: `refused` of `answers` were
        130429. The first refusal of a window pauses the limit briefly; the window's close
        cuts its rate by the refused share."""
        policy = self.policy
        self._report(
            keys=[self.prefix + limit.key, self._state_key(limit.key)],
            args=[
                float(limit.rate),
                answers,
                refused,
                int(policy.window_seconds * 1_000_000),
                int(policy.pause_seconds * 1_000_000),
                policy.recovery_per_second,
                policy.max_cut,
                policy.floor,
            ],
        )

    def adapted_rate(self, limit: Limit) -> AdaptedRate:
        # redis-py types each command for its sync and asyncio clients at once; this one is sync.
        rate, at, cut_at, share = cast(
            list, self.redis.hmget(self._state_key(limit.key), ["rate", "at", "cut_at", "share"])
        )
        if rate is None:
            return AdaptedRate(float(limit.rate), float(limit.rate))
        now_s, now_us = cast(tuple[int, int], self.redis.time())
        now = now_s * 1_000_000 + now_us
        return _adapted(
            limit.rate, float(rate), int(at), now, int(cut_at), float(share), self.policy
        )

    def wait_totals(self) -> dict[str, WaitTotals]:
        """Every wait handed out so far, per limit scope: the counters behind /metrics."""
        raw = cast(dict, self.redis.hgetall(self.prefix + self.WAITS_KEY))
        fields = {key.decode(): float(value) for key, value in raw.items()}
        scopes = {name.rsplit(":", 1)[0] for name in fields}
        return {
            scope: WaitTotals(
                fields.get(f"{scope}:seconds", 0.0), int(fields.get(f"{scope}:count", 0))
            )
            for scope in sorted(scopes)
        }

    def reset(self, keys: Sequence[str]) -> None:
        names = [n for key in keys for n in (self.prefix + key, self._state_key(key))]
        self.redis.delete(*names)


def _adapted(cap, rate, at_us, now_us, cut_at_us, share, policy) -> AdaptedRate:
    current = min(cap, rate + policy.recovery_per_second * cap * (now_us - at_us) / 1_000_000)
    cut_at = dt.datetime.fromtimestamp(cut_at_us / 1_000_000, dt.UTC)
    return AdaptedRate(current, float(cap), cut_at, share)


@dataclass
class _Adaptation:
    """The in-process twin of the adaptive state hash the Redis scripts keep."""

    rate: float | None = None
    at: int = 0
    start: int | None = None
    answers: int = 0
    refused: int = 0
    paused_window: int | None = None
    cut_at: int = 0
    share: float = 0.0

    def current(self, cap: float, now: int, policy: ThroughputPolicy) -> float:
        if self.rate is None:
            return cap
        return min(cap, self.rate + policy.recovery_per_second * cap * (now - self.at) / 1e6)


class LocalRateLimiter:
    """The same slots and adaptation in one process (microseconds on the monotonic clock)."""

    def __init__(self, policy: ThroughputPolicy | None = None):
        self.policy = policy or ThroughputPolicy()
        self._lock = threading.Lock()
        self._tat: dict[str, int] = {}
        self._adaptations: dict[str, _Adaptation] = {}

    @staticmethod
    def _now() -> int:
        return time.monotonic_ns() // 1000

    def take(
        self, limits: Sequence[Limit], want: int = 1, *, horizon: float | None = None
    ) -> Grant:
        horizon_us = NO_HORIZON if horizon is None else int(horizon * 1_000_000)
        with self._lock:
            now = self._now()
            intervals = [
                _interval_us(self._rate(limit, now) if limit.adaptive else limit.rate)
                for limit in limits
            ]
            spacing = max(intervals)
            tats = [self._tat.get(limit.key, 0) for limit in limits]
            slot = max(now, *tats)
            if slot > now:
                decider = limits[tats.index(slot)]
            else:
                decider = limits[intervals.index(spacing)]
            held_by = limit_scope(decider.key)
            first = slot - now
            if first > horizon_us:
                return Grant(0, first / 1e6, spacing / 1e6, held_by)
            count = min(want, math.floor((horizon_us - first) / spacing) + 1)
            last = slot + (count - 1) * spacing
            for limit, interval in zip(limits, intervals, strict=True):
                self._tat[limit.key] = last + interval
        return Grant(count, first / 1e6, spacing / 1e6, held_by)

    def _rate(self, limit: Limit, now: int) -> float:
        adaptation = self._adaptations.get(limit.key)
        return adaptation.current(limit.rate, now, self.policy) if adaptation else limit.rate

    def report(self, limit: Limit, answers: int, refused: int) -> None:
        policy = self.policy
        with self._lock:
            now = self._now()
            state = self._adaptations.setdefault(limit.key, _Adaptation())
            rate = state.current(limit.rate, now, policy)
            start = now if state.start is None else state.start
            total, refusals = state.answers + answers, state.refused + refused
            if refused and state.paused_window != start:
                pause_until = now + int(policy.pause_seconds * 1e6)
                self._tat[limit.key] = max(self._tat.get(limit.key, 0), pause_until)
                state.paused_window = start
            if now - start >= policy.window_seconds * 1e6:
                if refusals:
                    share = min(1.0, refusals / max(total, 1))
                    state.rate = max(policy.floor, rate * (1 - min(policy.max_cut, share)))
                    state.at = state.cut_at = now
                    state.share = share
                elif state.rate is not None and rate >= limit.rate:
                    state.rate = None
                state.start, state.answers, state.refused = now, 0, 0
            else:
                state.start, state.answers, state.refused = start, total, refusals

    def adapted_rate(self, limit: Limit) -> AdaptedRate:
        with self._lock:
            state = self._adaptations.get(limit.key)
            if state is None or state.rate is None:
                return AdaptedRate(float(limit.rate), float(limit.rate))
            now = self._now()
            cut_ago = (now - state.cut_at) / 1e6
            cut_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=cut_ago)
            return AdaptedRate(
                state.current(limit.rate, now, self.policy), float(limit.rate), cut_at, state.share
            )

    def add_waits(self, waits: dict[str, WaitTotals]) -> None:
        """Not kept: the worker is another process than the web serving /metrics."""

    def wait_totals(self) -> dict[str, WaitTotals]:
        return {}

    def reset(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                self._tat.pop(key, None)
                self._adaptations.pop(key, None)


RateLimiter = RedisRateLimiter | LocalRateLimiter


@lru_cache(maxsize=1)
def get_rate_limiter() -> RateLimiter:
    """Redis when the deployment has it (every worker shares it), in-process otherwise."""
    url = settings.RATE_LIMIT_REDIS_URL
    policy = ThroughputPolicy.from_settings()
    return RedisRateLimiter(url, policy=policy) if url else LocalRateLimiter(policy)
