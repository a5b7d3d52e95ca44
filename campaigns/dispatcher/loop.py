"""The process's one event loop for requests to Meta, in a thread of its own, and the wire
slots that bound what a crash of the process can leave `unknown`."""

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

from django.conf import settings

from messaging.client import AsyncWhatsAppClient


class DeliveryLoop:
    """The process's event loop for requests to Meta, shared by its dispatch runs. A row may
    be `sending` only while it holds one of the wire slots (released once its outcome is
    written), so a crash of the process loses at most DISPATCH_CONCURRENCY recipients to
    `unknown`; the connection pool is as large."""

    def __init__(self, concurrency: int):
        self.concurrency = concurrency
        self.wire_slots = threading.BoundedSemaphore(concurrency)
        self.loop = asyncio.new_event_loop()
        self.clients: dict[str, AsyncWhatsAppClient] = {}
        self.tasks: set[asyncio.Task] = set()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="dispatch-loop", daemon=True
        )
        self.thread.start()

    def start(self, deliveries: list[Coroutine[Any, Any, None]]) -> None:
        """Start deliveries on the loop: one wake-up of the loop per group, from any thread."""
        self.loop.call_soon_threadsafe(self._start, deliveries)

    def _start(self, deliveries: list[Coroutine[Any, Any, None]]) -> None:
        for delivery in deliveries:
            task = self.loop.create_task(delivery)
            self.tasks.add(task)  # the loop keeps only weak references to its tasks
            task.add_done_callback(self.tasks.discard)

    def client(self, base_url: str) -> AsyncWhatsAppClient:
        """The loop's client for `base_url` (Meta, or a sandbox); called on the loop."""
        if base_url not in self.clients:
            self.clients[base_url] = AsyncWhatsAppClient(
                base_url=base_url, pool_maxsize=self.concurrency
            )
        return self.clients[base_url]

    def close(self) -> None:
        async def close_clients() -> None:
            for task in list(self.tasks):
                task.cancel()
            for client in self.clients.values():
                await client.close()

        asyncio.run_coroutine_threadsafe(close_clients(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


_lock = threading.Lock()
_current: DeliveryLoop | None = None


def delivery_loop() -> DeliveryLoop:
    """The process's one delivery loop. A worker's threads start dispatch runs at the same
    moment: created under a lock, or two runs would each make a loop, and one would take its
    wire slots and client from the other's (futures on a different loop, a semaphore
    released too many times)."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = DeliveryLoop(settings.DISPATCH_CONCURRENCY)
    return _current


def reset_delivery_loop() -> None:
    """Close the process's delivery loop; the next dispatch run starts one for the settings
    of that moment (tests change DISPATCH_CONCURRENCY)."""
    global _current
    with _lock:
        if _current is not None:
            _current.close()
        _current = None
