"""Shared fixtures: per-test media and static folders, a real Meta sandbox on a free port,
and a real webhook receiver."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings

from messaging.client import WhatsAppClient
from messaging.sandbox.control import SandboxControl
from messaging.sandbox.server import SandboxThread
from messaging.sandbox.state import SandboxConfig
from tests.factories import MessageTemplateFactory, WhatsAppNumberFactory


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Uploaded files land in a per-test folder, never in the developer's var/."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _static_root(settings, tmp_path):
    """WhiteNoise serves from an existing (empty) folder instead of the collected var/static."""
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STATIC_ROOT.mkdir()


@pytest.fixture(scope="session")
def sandbox_server():
    server = SandboxThread(SandboxConfig(app_secret=settings.WHATSAPP_APP_SECRET)).start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server, settings):
    """The sandbox, reset to its start state; WHATSAPP_GRAPH_URL points at it."""
    control = SandboxControl(sandbox_server.url)
    control.reset()
    settings.WHATSAPP_GRAPH_URL = sandbox_server.url
    yield control
    control.reset()


@pytest.fixture
def whatsapp_client(sandbox):
    whatsapp = WhatsAppClient(base_url=sandbox.url, timeout=(1, 5))
    yield whatsapp
    whatsapp.close()


@pytest.fixture
def number(sandbox):
    """A number of a fresh organization, known to the sandbox with its token."""
    whatsapp_number = WhatsAppNumberFactory(display_phone_number="+1 555 010 0001")
    sandbox.register_number(whatsapp_number)
    return whatsapp_number


@pytest.fixture
def marketing_template(sandbox, number):
    template = MessageTemplateFactory(
        organization=number.organization, name="spring_sale", body_text="Hi {{1}}, {{2}} off!"
    )
    sandbox.register_template(template, number.waba_id)
    return template


@pytest.fixture
def utility_template(sandbox, number):
    template = MessageTemplateFactory(
        organization=number.organization,
        name="order_update",
        category="UTILITY",
        body_text="Order {{1}} shipped.",
    )
    sandbox.register_template(template, number.waba_id)
    return template


class WebhookReceiver:
    """A tiny HTTP server recording every POST (headers and raw body), answering 200."""

    def __init__(self):
        self.deliveries: list[tuple[dict, bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.deliveries.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/whatsapp"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def statuses(self) -> list[dict]:
        with self.lock:
            bodies = [json.loads(body) for _, body in self.deliveries]
        return [
            status
            for payload in bodies
            for entry in payload["entry"]
            for change in entry["changes"]
            for status in change["value"].get("statuses", [])
        ]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_receiver(sandbox):
    receiver = WebhookReceiver()
    sandbox.configure(
        webhook_url=receiver.url, sent_delay_ms=0, delivered_delay_ms=20, read_delay_ms=40
    )
    yield receiver
    receiver.close()
