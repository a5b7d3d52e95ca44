"""Rate limiting shared by every worker: GCRA slots reserved atomically in Redis.

A caller reserves the next free slot on several limits at once (the send's
max_messages_per_second and the number's throughput cap) and is told how long to wait
before using it. Reserving instead of polling means no retry storms, exact spacing (a
20/s limit sends every 50 ms, so no one-second window ever holds more than 21), and one
Redis round trip per message. Time comes from the Redis server, the one clock all
workers share.

The same script counts the waits it hands out (seconds and messages, per limit scope) in one
Redis hash, so /metrics can tell whether sends queue behind their own rate or behind their
number's throughput cap, at no extra round trip.

The embedded shape (one worker process, no Redis) uses LocalRateLimiter, the same
algorithm behind a lock. It keeps no wait counters: its worker is another process than the
web serving /metrics, so in-memory counts would never reach a scrape.
"""

import threading
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from django.conf import settings

# KEYS: one per limit, then (when waits are recorded) the wait counters' hash.
# ARGV[1]: how many slots; ARGV[2]: how many limits (n); ARGV[3..n+2]: each limit's emission
# interval in microseconds; ARGV[n+3..2n+2]: each limit's scope, the counters' field prefix.
# Slots follow each other at the slowest interval, so every limit holds. The batch's waits
# are counted against one scope: the limit whose slot was furthest ahead, or, when none was
# ahead of now, the slowest one, which spaces the batch.
# Returns the microseconds the caller must wait before its first slot.
_RESERVE_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local count = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local slot = now
local spacing = 0
local ahead = 0
local slowest = 1
for i = 1, n do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat > slot then slot = tat; ahead = i end
  local interval = tonumber(ARGV[i + 2])
  if interval > spacing then spacing = interval; slowest = i end
end
local last = slot + (count - 1) * spacing
for i = 1, n do
  local next_tat = last + tonumber(ARGV[i + 2])
  redis.call('SET', KEYS[i], string.format('%d', next_tat), 'PX', math.floor((next_tat - now) / 1000) + 60000)
end
local first = slot - now
local waited = count - 1
if first > 0 then waited = count end
if #KEYS > n and waited > 0 then
  local scope = ARGV[n + 2 + (ahead > 0 and ahead or slowest)]
  local total = count * first + spacing * count * (count - 1) / 2
  redis.call('HINCRBYFLOAT', KEYS[n + 1], scope .. ':seconds', string.format('%.6f', total / 1000000))
  redis.call('HINCRBY', KEYS[n + 1], scope .. ':count', waited)
end
return first
"""

Limit = tuple[str, float]  # (key, allowed events per second); the key reads "scope:id"


class WaitTotals(NamedTuple):
    seconds: float
    count: int


def limit_scope(key: str) -> str:
    """ "send" for "send:12", "number" for "number:3": what a wait is counted against."""
    return key.split(":", 1)[0]


def _intervals_us(limits: Sequence[Limit]) -> list[int]:
    return [max(1, int(round(1_000_000 / rate))) for _, rate in limits]


class RedisRateLimiter:
    WAITS_KEY = "waits"

    def __init__(self, url: str, prefix: str = "setter:rate:"):
        import redis

        self.redis = redis.Redis.from_url(url)
        self.prefix = prefix
        self._reserve = self.redis.register_script(_RESERVE_SCRIPT)

    def reserve(
        self, limits: Sequence[Limit], count: int = 1, *, record: bool = True
    ) -> list[float]:
        """Take the next `count` slots on every limit in one round trip; the seconds to
        wait before using each. `record=False` for a reservation nobody waits on (a penalty
        pushing a limit back), which must not count as a wait."""
        keys = [self.prefix + key for key, _ in limits]
        if record:
            keys.append(self.prefix + self.WAITS_KEY)
        intervals = _intervals_us(limits)
        args = [count, len(limits), *intervals, *(limit_scope(key) for key, _ in limits)]
        first = self._reserve(keys=keys, args=args) / 1_000_000
        return _slots(first, intervals, count)

    def wait_totals(self) -> dict[str, WaitTotals]:
        """Every wait handed out so far, per limit scope: the counters behind /metrics."""
        raw = self.redis.hgetall(self.prefix + self.WAITS_KEY)
        fields = {key.decode(): float(value) for key, value in raw.items()}
        scopes = {name.rsplit(":", 1)[0] for name in fields}
        return {
            scope: WaitTotals(
                fields.get(f"{scope}:seconds", 0.0), int(fields.get(f"{scope}:count", 0))
            )
            for scope in sorted(scopes)
        }

    def reset(self, keys: Sequence[str]) -> None:
        self.redis.delete(*(self.prefix + key for key in keys))


class LocalRateLimiter:
    def __init__(self):
        self._lock = threading.Lock()
        self._tat: dict[str, int] = {}

    def reserve(
        self, limits: Sequence[Limit], count: int = 1, *, record: bool = True
    ) -> list[float]:
        intervals = _intervals_us(limits)
        spacing = max(intervals)
        with self._lock:
            now = time.monotonic_ns() // 1000
            slot = max([now, *(self._tat.get(key, 0) for key, _ in limits)])
            last = slot + (count - 1) * spacing
            for (key, _), interval in zip(limits, intervals, strict=True):
                self._tat[key] = last + interval
        return _slots((slot - now) / 1_000_000, intervals, count)

    def wait_totals(self) -> dict[str, WaitTotals]:
        return {}

    def reset(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                self._tat.pop(key, None)


def _slots(first: float, intervals: list[int], count: int) -> list[float]:
    spacing = max(intervals) / 1_000_000
    return [first + i * spacing for i in range(count)]


@lru_cache(maxsize=1)
def get_rate_limiter():
    """Redis when the deployment has it (every worker shares it), in-process otherwise."""
    url = settings.RATE_LIMIT_REDIS_URL
    return RedisRateLimiter(url) if url else LocalRateLimiter()
