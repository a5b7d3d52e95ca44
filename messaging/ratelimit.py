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

# KEYS: one per limit; ARGV: the emission interval of each key in microseconds.
# Returns the microseconds the caller must wait before its slot.
_RESERVE_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local slot = now
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat > slot then slot = tat end
end
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[i])
  local next_tat = slot + interval
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

    def reserve(self, limits: Sequence[Limit]) -> float:
        """Take the next slot on every limit; seconds to wait before using it."""
        keys = [self.prefix + key for key, _ in limits]
        return self._reserve(keys=keys, args=_intervals_us(limits)) / 1_000_000

    def reset(self, keys: Sequence[str]) -> None:
        self.redis.delete(*(self.prefix + key for key in keys))


class LocalRateLimiter:
    def __init__(self):
        self._lock = threading.Lock()
        self._tat: dict[str, int] = {}

    def reserve(self, limits: Sequence[Limit]) -> float:
        with self._lock:
            now = time.monotonic_ns() // 1000
            slot = max([now, *(self._tat.get(key, 0) for key, _ in limits)])
            for (key, _), interval in zip(limits, _intervals_us(limits), strict=True):
                self._tat[key] = slot + interval
            return (slot - now) / 1_000_000

    def reset(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                self._tat.pop(key, None)


def acquire(limiter, limits: Sequence[Limit]) -> float:
    """Reserve a slot and sleep until it; returns the seconds waited (for metrics)."""
    wait = limiter.reserve(limits)
    if wait > 0:
        time.sleep(wait)
    return wait


@lru_cache(maxsize=1)
def get_rate_limiter():
    """Redis when the deployment has it (every worker shares it), in-process otherwise."""
    url = settings.RATE_LIMIT_REDIS_URL
    return RedisRateLimiter(url) if url else LocalRateLimiter()
