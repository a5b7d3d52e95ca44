"""Running the sandbox: in the foreground (the management command) or in a thread (tests)."""

import asyncio
import logging
import socket
import threading

from aiohttp import web
from django.db import connections

from .app import Sandbox, make_app
from .state import Registry, SandboxConfig, SandboxNumber, SandboxTemplate

logger = logging.getLogger(__name__)

# Keep-alive connections of a sender's pool may idle between sends; closing them early
# would make the next send on them fail mid-request.
KEEPALIVE_TIMEOUT = 300


def registry_from_database() -> Registry:
    """Every WhatsAppNumber and the templates usable by it (its organization's, same WABA)."""
    from messaging.models import MessageTemplate, WhatsAppNumber

    registry = Registry()
    try:
        wabas_of_org: dict[int, set[str]] = {}
        for number in WhatsAppNumber.objects.all():
            registry.add_number(
                SandboxNumber(
                    phone_number_id=number.phone_number_id,
                    waba_id=number.waba_id,
                    access_token=number.access_token,
                    display_phone_number=number.display_phone_number,
                    messaging_limit_tier=number.messaging_limit,
                    quality_rating=number.quality_rating or "GREEN",
                    throughput_level="HIGH" if number.throughput_mps >= 1000 else "STANDARD",
                    mm_lite_terms_accepted=number.mm_lite_terms_accepted,
                )
            )
            wabas_of_org.setdefault(number.organization_id, set()).add(number.waba_id)
        for template in MessageTemplate.objects.all():
            wabas = wabas_of_org.get(template.organization_id, set())
            if template.waba_id:
                wabas = {template.waba_id}
            for waba_id in wabas:
                registry.add_template(
                    SandboxTemplate(
                        waba_id=waba_id,
                        name=template.name,
                        language=template.language,
                        category=template.category,
                        status=template.status,
                        components=template.components
                        or [{"type": "BODY", "text": template.body_text}],
                        id=template.meta_template_id or str(registry.new_template_id()),
                    )
                )
    finally:
        connections.close_all()  # this thread's connections; the server holds none open
    return registry


async def _start(sandbox: Sandbox, sock: socket.socket) -> web.AppRunner:
    runner = web.AppRunner(make_app(sandbox), access_log=None, keepalive_timeout=KEEPALIVE_TIMEOUT)
    await runner.setup()
    await web.SockSite(runner, sock, backlog=1024).start()
    return runner


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def serve_forever(sandbox: Sandbox, host: str, port: int) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM via the caller)."""

    async def main():
        runner = await _start(sandbox, bind(host, port))
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass


class SandboxThread:
    """A sandbox on its own event loop in a background thread, on a free port by default."""

    def __init__(
        self, config: SandboxConfig | None = None, registry: Registry | None = None, reload=None
    ):
        self.sandbox = Sandbox(config or SandboxConfig(), registry or Registry(), reload=reload)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="sandbox")
        self.runner: web.AppRunner | None = None
        self.url = ""

    def start(self, host: str = "127.0.0.1", port: int = 0) -> "SandboxThread":
        sock = bind(host, port)
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(_start(self.sandbox, sock), self.loop)
        self.runner = future.result(timeout=10)
        self.url = f"http://{host}:{sock.getsockname()[1]}"
        return self

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
