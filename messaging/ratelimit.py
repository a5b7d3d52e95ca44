"""Rate limiting shared by every worker: GCRA slots reserved atomically in Redis.

A caller reserves the next free slot on several limits at once (the send's
max_messages_per_second and the number's throughput cap) and is told how long to wait
before using it. Reserving instead of polling means no retry storms, exact spacing (a
20/s limit sends every 50 ms, so no one-second window ever holds more than 21), and one
Redis round trip per message. Time comes from the Redis server, the one clock all
workers share.

The embedded shape (one worker process, no Redis) uses LocalRateLimiter, the same
algorithm behind a lock.
"""

import threading
import time
from collections.abc import Sequence
from functools import lru_cache

from django.conf import settings

# KEYS: one per limit; ARGV[1]: how many slots; ARGV[2..]: each key's emission interval in
# microseconds. Slots follow each other at the slowest interval, so every limit holds.
# Returns the microseconds the caller must wait before its first slot.
_RESERVE_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local count = tonumber(ARGV[1])
local slot = now
local spacing = 0
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat > slot then slot = tat end
  local interval = tonumber(ARGV[i + 1])
  if interval > spacing then spacing = interval end
end
local last = slot + (count - 1) * spacing
for i, key in ipairs(KEYS) do
  local next_tat = last + tonumber(ARGV[i + 1])
  redis.call('SET', key, string.format('%d', next_tat), 'PX', math.floor((next_tat - now) / 1000) + 60000)
end
return slot - now
"""

Limit = tuple[str, float]  # (key, allowed events per second)


def _intervals_us(limits: Sequence[Limit]) -> list[int]:
    return [max(1, int(round(1_000_000 / rate))) for _, rate in limits]


class RedisRateLimiter:
    def __init__(self, url: str, prefix: str = "setter:rate:"):
        import redis

        self.redis = redis.Redis.from_url(url)
        self.prefix = prefix
        self._reserve = self.redis.register_script(_RESERVE_SCRIPT)

    def reserve(self, limits: Sequence[Limit], count: int = 1) -> list[float]:
        """Take the next `count` slots on every limit in one round trip; the seconds to
        wait before using each."""
        keys = [self.prefix + key for key, _ in limits]
        intervals = _intervals_us(limits)
        first = self._reserve(keys=keys, args=[count, *intervals]) / 1_000_000
        return _slots(first, intervals, count)

    def reset(self, keys: Sequence[str]) -> None:
        self.redis.delete(*(self.prefix + key for key in keys))


class LocalRateLimiter:
    def __init__(self):
        self._lock = threading.Lock()
        self._tat: dict[str, int] = {}

    def reserve(self, limits: Sequence[Limit], count: int = 1) -> list[float]:
        intervals = _intervals_us(limits)
        spacing = max(intervals)
        with self._lock:
            now = time.monotonic_ns() // 1000
            slot = max([now, *(self._tat.get(key, 0) for key, _ in limits)])
            last = slot + (count - 1) * spacing
            for (key, _), interval in zip(limits, intervals, strict=True):
                self._tat[key] = last + interval
        return _slots((slot - now) / 1_000_000, intervals, count)

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
