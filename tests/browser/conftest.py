"""Headless Chromium (Debian's `chromium`, driven by Playwright) against a live server, with a
real Celery worker and beat's engine tick, so pages show what the engine really does.

Playwright's Python package brings its own driver but no browser: it drives the system's
chromium (`CHROMIUM_PATH`, default /usr/bin/chromium; `make test` installs it). Every test
saves screenshots of its steps, and of the page it failed on, under artifacts/screenshots/.
"""

import contextlib
import os
import re
import shutil
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from playwright.sync_api import expect, sync_playwright

from campaigns.tasks import engine_tick_task
from config.celery import app as celery_app
from config.management.demo import seed_demo
from tests.support import running_celery_worker

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "artifacts" / "screenshots"
TIMEOUT_MS = 20_000


@pytest.fixture(scope="package")
def browser():
    """One Chromium for the browser tests, stopped after the last of them.

    Playwright's sync API keeps an event loop running in this thread while it is started;
    Django would then refuse the tests' own ORM calls as "async". They are plain blocking
    calls, as in any other test, so the check is off while Playwright runs (only then)."""
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.call_failed = report.failed
    return report


class Screenshots:
    """Numbered screenshots of one test: artifacts/screenshots/<test>/<nn>-<step>.png."""

    def __init__(self, page, test_name: str):
        self.page = page
        self.folder = SCREENSHOTS / re.sub(r"[^\w.-]+", "_", test_name)
        shutil.rmtree(self.folder, ignore_errors=True)  # only this run's steps
        self.count = 0

    def __call__(self, step: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{step}.png"
        self.page.screenshot(path=path, full_page=True)
        return path


@contextlib.contextmanager
def browser_page(browser, base_url: str, request, **context_options):
    """A page on `base_url` that saves screenshots of its steps, and of the page a test
    failed on. `context_options` are Playwright's (a viewer's `timezone_id`, a `viewport`)."""
    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(
        base_url=base_url, **{"viewport": {"width": 1280, "height": 900}, **context_options}
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.screenshots = Screenshots(page, request.node.name)
    try:
        yield page
        if getattr(request.node, "call_failed", False):
            page.screenshots("failure")
    finally:
        context.close()


@pytest.fixture
def page(browser, live_server, request):
    with browser_page(browser, live_server.url, request) as opened:
        yield opened


@pytest.fixture
def demo(sandbox):
    """The demo organization `manage.py demo_seed` creates (its staff user, number, templates,
    audience and campaign), with its number and templates known to the sandbox."""
    seed = seed_demo()
    sandbox.register_number(seed.whatsapp_number)
    for template in seed.organization.message_templates.all():
        sandbox.register_template(template, seed.whatsapp_number.waba_id)
    return seed


def log_in(page, username: str, password: str) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login-form [type=submit]")
    expect(page.locator("#user-tools")).to_contain_text(username)


@pytest.fixture
def staff_page(page, demo):
    """The browser, logged in to the admin as the demo staff user."""
    log_in(page, demo.admin_username, demo.admin_password)
    return page


class Engine:
    """The engine, started when the test says: a real Celery worker (a thread of this
    process, on the test's Redis) and beat's part, the engine tick every half second in
    another thread (the dispatch tasks it queues go to the worker)."""

    def __init__(self, settings, interval: float = 0.5):
        self.settings = settings
        self.interval = interval
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="engine-tick", daemon=True)
        self._worker = contextlib.ExitStack()

    def _tick(self):
        try:
            while not self._stop.wait(self.interval):
                try:
                    engine_tick_task()
                except Exception as error:  # reported by stop(); the next tick tries again
                    self.errors.append(error)
        finally:
            connections.close_all()

    def start(self) -> None:
        self._worker.enter_context(running_celery_worker(self.settings, purge=False))
        self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._ticker.is_alive():
            self._ticker.join(timeout=30)
        self._worker.close()


@pytest.fixture
def engine(live_server, sandbox, settings):
    """The engine, not yet started, with the sandbox posting its status webhooks to the live
    server. Tasks left in the queue by earlier runs are purged now."""
    settings.DISPATCH_START_AHEAD_SECONDS = 0
    sandbox.configure(
        webhook_url=live_server.url + "/webhooks/whatsapp",
        sent_delay_ms=0,
        delivered_delay_ms=200,
        read_delay_ms=400,
    )
    celery_app.control.purge()
    engine = Engine(settings)
    yield engine
    engine.stop()
    assert not engine.errors, f"the engine tick failed: {engine.errors[0]!r}"
