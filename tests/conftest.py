"""Shared fixtures: per-test media and static folders, a real Meta sandbox on a free port,
a real webhook receiver, a real Celery worker thread, and real worker processes on a
queue of the test's own."""

import json
import uuid

import pytest
import redis
from django.conf import settings

from messaging.client import WhatsAppClient
from messaging.sandbox.server import SandboxThread
from messaging.sandbox.state import SandboxConfig
from tests.api_schema import SchemaCheckedClient
from tests.factories import MessageTemplateFactory, WhatsAppNumberFactory
from tests.support import RecordingReceiver, Worker, reset_sandbox, running_celery_worker


@pytest.fixture(autouse=True)
def _var_dir(settings, tmp_path):
    """State files (the demo's stored credentials, …) go to a per-test folder too."""
    settings.VAR_DIR = tmp_path / "var"


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Uploaded files land in a per-test folder, never in the developer's var/."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _static_root(settings, tmp_path):
    """WhiteNoise serves from an existing (empty) folder instead of the collected var/static."""
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STATIC_ROOT.mkdir()


@pytest.fixture(autouse=True)
def _loopback_webhook_receivers(settings):
    """The tests' webhook receivers listen on 127.0.0.1; tests of the SSRF refusal turn
    this off again."""
    settings.OUTBOUND_WEBHOOK_ALLOW_LOOPBACK = True


# The sandbox's defaults are realistic (a few messages fail, no reads from limited-reporting
# regions); tests count exactly, so theirs reports every message delivered and read. A test
# of those defaults or of faults configures them itself.
EXACT_SANDBOX = {"ratio_async_failure": 0.0, "limited_reporting": False}


@pytest.fixture
def client():
    """pytest-django's client, but every REST API and webhook answer must match the
    published OpenAPI schema."""
    return SchemaCheckedClient()


@pytest.fixture(scope="session")
def sandbox_server():
    config = SandboxConfig(app_secret=settings.WHATSAPP_APP_SECRET, **EXACT_SANDBOX)
    server = SandboxThread(config).start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server, settings):
    yield from reset_sandbox(sandbox_server.url, settings)


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


class WebhookReceiver(RecordingReceiver):
    """Where the sandbox posts Meta's status webhooks."""

    def __init__(self):
        super().__init__("/webhooks/whatsapp")

    def statuses(self) -> list[dict]:
        return [
            status
            for payload in map(json.loads, self.bodies())
            for entry in payload["entry"]
            for change in entry["changes"]
            for status in change["value"].get("statuses", [])
        ]


@pytest.fixture
def webhook_receiver(sandbox):
    receiver = WebhookReceiver()
    sandbox.configure(
        webhook_url=receiver.url, sent_delay_ms=0, delivered_delay_ms=20, read_delay_ms=40
    )
    yield receiver
    receiver.close()


@pytest.fixture
def celery_worker(settings):
    with running_celery_worker(settings):
        yield


@pytest.fixture
def queue():
    """A queue of this test's own, so no stale message of another run reaches its workers
    (they also send their own follow-up tasks there)."""
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
def workers(sandbox, queue, settings):
    """Start worker processes on the test's queue. The suite's Redis database is emptied
    first: rate-limit slots are keyed by database ids, which every test database reuses, so a
    send of an earlier run would otherwise hand its far-off slots to this one."""
    redis.Redis.from_url(settings.RATE_LIMIT_REDIS_URL).flushdb()
    started = []

    def start(**options):
        worker = Worker(sandbox.url, queue, **options)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def fast_engine(settings):
    """The dispatcher without its production pacing: retries in milliseconds, sends started
    the moment they are due, a fresh delivery loop and client for the test's settings."""
    from campaigns import dispatcher

    settings.DISPATCH_RETRY_BASE_SECONDS = 0.02
    settings.DISPATCH_START_AHEAD_SECONDS = 0
    settings.DISPATCH_CONCURRENCY = 8
    dispatcher.reset_delivery_loop()
    yield
    dispatcher.reset_delivery_loop()
