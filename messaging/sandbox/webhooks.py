"""Status webhooks: sent → delivered → read (or failed), batched, signed, posted.

Sends only push entries onto a time-ordered heap, so answering a send never waits for the
webhook receiver. One flusher task turns the entries that came due into real-shaped
payloads, several statuses per POST under load, signed like Meta signs them
(X-Hub-Signature-256: HMAC-SHA256 of the raw body with the app secret); a few poster tasks
deliver them from a bounded queue, retrying a little, logging what they cannot deliver.
"""

import asyncio
import hashlib
import heapq
import hmac
import itertools
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from .state import SandboxConfig, SandboxNumber

logger = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.05
POSTERS = 4
POST_ATTEMPTS = 3
MAX_PENDING = 1_000_000
ERROR_TITLES = {
    131026: "Message undeliverable",
    131049: "This message was not delivered to maintain healthy ecosystem engagement.",
    131050: "Unable to deliver the message. This recipient has chosen to stop receiving "
    "marketing messages on WhatsApp from your business.",
    131047: "Re-engagement message",
}


@dataclass(frozen=True)
class Accepted:
    """A message the sandbox accepted, with what its status webhooks must echo."""

    number: SandboxNumber
    wa_id: str
    wamid: str
    callback_data: str
    pricing_category: str  # marketing_lite | marketing | utility
    conversation_id: str
    limited_reporting: bool = False  # EEA/UK/JP/KR: Meta reports no reads


def sign(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def _status(message: Accepted, status: str, error_code: int | None) -> dict:
    now = int(time.time())
    item: dict[str, Any] = {
        "id": message.wamid,
        "status": status,
        "timestamp": str(now),
        "recipient_id": message.wa_id,
    }
    if message.callback_data:
        item["biz_opaque_callback_data"] = message.callback_data
    if error_code is not None:
        title = ERROR_TITLES.get(error_code, "Message failed")
        item["errors"] = [
            {
                "code": error_code,
                "title": title,
                "message": title,
                "error_data": {"details": f"{title} (sandbox)"},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
            }
        ]
        return item
    conversation: dict[str, Any] = {
        "id": message.conversation_id,
        "origin": {"type": message.pricing_category},
    }
    if status == "sent":
        conversation["expiration_timestamp"] = str(now + 86_400)
    item["conversation"] = conversation
    item["pricing"] = {
        "billable": True,
        "pricing_model": "PMP",
        "category": message.pricing_category,
    }
    return item


def status_payload(number: SandboxNumber, statuses: list[dict]) -> dict:
    """One webhook delivery for one number, in the shape Meta posts."""
    contacts = {s["recipient_id"]: None for s in statuses}
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": number.waba_id,
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": number.display_digits,
                                "phone_number_id": number.phone_number_id,
                            },
                            "contacts": [
                                {"profile": {"name": "Sandbox user"}, "wa_id": wa_id}
                                for wa_id in contacts
                            ],
                            "statuses": statuses,
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }


class StatusNotifier:
    def __init__(self, config: SandboxConfig, rng):
        self.config = config
        self.rng = rng
        self.pending: list[tuple[float, int, Accepted, str, int | None]] = []
        self.counter = itertools.count()
        self.queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=256)
        self.stats: Counter = Counter()
        self.tasks: list[asyncio.Task] = []
        self.session: aiohttp.ClientSession | None = None

    def schedule(self, message: Accepted) -> None:
        """Queue this message's status webhooks; never blocks."""
        if not self.config.webhook_url:
            return
        if len(self.pending) >= MAX_PENDING:
            self.stats["dropped"] += 1
            return
        config, now = self.config, time.monotonic()
        self._push(now + config.sent_delay_ms / 1000, message, "sent", None)
        later = now + config.delivered_delay_ms / 1000
        if self.rng.random() < config.ratio_async_failure:
            self._push(later, message, "failed", config.async_failure_code)
            return
        self._push(later, message, "delivered", None)
        if config.limited_reporting and message.limited_reporting:
            return
        if self.rng.random() < config.read_ratio:
            self._push(now + config.read_delay_ms / 1000, message, "read", None)

    def _push(self, due, message, status, error_code) -> None:
        heapq.heappush(self.pending, (due, next(self.counter), message, status, error_code))

    def clear(self) -> None:
        self.pending.clear()
        self.stats.clear()
        while not self.queue.empty():
            self.queue.get_nowait()
            self.queue.task_done()

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=10),
            connector=aiohttp.TCPConnector(limit=POSTERS),
        )
        self.tasks = [asyncio.create_task(self._flush_forever())]
        self.tasks += [asyncio.create_task(self._post_forever()) for _ in range(POSTERS)]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.session is not None:
            await self.session.close()

    def snapshot(self) -> dict:
        return {**self.stats, "pending": len(self.pending), "queued": self.queue.qsize()}

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                await self._flush_due()
            except Exception:
                logger.exception("status webhook flush failed")

    async def _flush_due(self) -> None:
        now = time.monotonic()
        by_number: dict[str, tuple[SandboxNumber, list[dict]]] = {}
        while self.pending and self.pending[0][0] <= now:
            _, _, message, status, error_code = heapq.heappop(self.pending)
            number = message.number
            by_number.setdefault(number.phone_number_id, (number, []))[1].append(
                _status(message, status, error_code)
            )
        size = max(1, self.config.webhook_batch_size)
        for number, statuses in by_number.values():
            for start in range(0, len(statuses), size):
                body = orjson.dumps(status_payload(number, statuses[start : start + size]))
                self.stats["statuses"] += len(statuses[start : start + size])
                # Back-pressure lands here, on the flusher, never on send answers.
                await self.queue.put((self.config.webhook_url, body))

    async def _post_forever(self) -> None:
        while True:
            url, body = await self.queue.get()
            try:
                await self._post(url, body)
            finally:
                self.queue.task_done()

    async def _post(self, url: str, body: bytes) -> None:
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(self.config.app_secret, body),
        }
        assert self.session is not None  # opened by start(), before any delivery
        for attempt in range(POST_ATTEMPTS):
            try:
                async with self.session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status < 500:
                        if response.status >= 400:
                            logger.warning("webhook %s answered %s", url, response.status)
                            self.stats["rejected"] += 1
                        else:
                            self.stats["posted"] += 1
                        return
                    reason = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as error:
                reason = repr(error)
            if attempt + 1 < POST_ATTEMPTS:
                await asyncio.sleep(0.5 * 2**attempt)
        logger.warning("webhook %s undeliverable after %d attempts: %s", url, attempt + 1, reason)
        self.stats["failed"] += 1
