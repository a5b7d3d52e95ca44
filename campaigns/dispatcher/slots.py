"""Fresh rate-limit slots for deliveries that woke too late for theirs."""

import asyncio
import time
from functools import partial

from messaging.ratelimit import get_rate_limiter


class FreshSlots:
    """Rate-limit slots for deliveries that woke too late for theirs (a busy loop: sending
    then would burst). The late deliveries of one turn of the loop share one limiter round
    trip, off the loop: a late wake-up rarely comes alone, and a round trip each put a third
    of a busy worker's time in its executor threads (issue 17.2)."""

    def __init__(self, limits: list):
        self.limits = limits
        # Deliveries whose take has not started yet: while any wait, one is on its way.
        self.waiting: list[asyncio.Future[float]] = []
        self.tasks: set[asyncio.Task] = set()  # the loop keeps only weak references

    async def slot(self) -> float:
        """The monotonic time of a fresh slot; called on the loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[float] = loop.create_future()
        if not self.waiting:
            # Runs after the deliveries already due in this turn, which join `waiting`.
            taking = loop.create_task(self._take())
            self.tasks.add(taking)
            taking.add_done_callback(self.tasks.discard)
        self.waiting.append(future)
        return await future

    async def _take(self) -> None:
        waiting, self.waiting = self.waiting, []
        take = partial(get_rate_limiter().take, self.limits, len(waiting))
        try:
            grant = await asyncio.get_running_loop().run_in_executor(None, take)
        except Exception as error:
            for future in waiting:
                if not future.done():
                    future.set_exception(error)
            return
        granted_at = time.monotonic()
        for future, wait in zip(waiting, grant.waits(), strict=True):
            if not future.done():
                future.set_result(granted_at + wait)
