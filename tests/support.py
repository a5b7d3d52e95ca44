"""Helpers for tests that wait on real processes and sockets."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.conf import settings
from django.db import connection, connections

from config.celery import app as celery_app
from messaging.sandbox.control import SandboxControl

# Real-shaped Meta webhook payloads, kept in the repository (tests/fixtures/meta-webhooks).
META_WEBHOOKS = Path(__file__).parent / "fixtures" / "meta-webhooks" / "pywa"


def reset_sandbox(url: str, settings):
    """The sandbox at `url`, reset to its start state before and after the test;
    WHATSAPP_GRAPH_URL points at it."""
    control = SandboxControl(url)
    control.reset()
    settings.WHATSAPP_GRAPH_URL = url
    yield control
    control.reset()


# A staff member's own phone, kept as a test phone in test-send tests (a valid UK mobile).
STAFF_PHONE = "+447911123456"


def wait_until(condition, timeout: float = 10.0, interval: float = 0.02, describe=None):
    """Poll condition() until it returns something truthy; fail after timeout seconds,
    with describe()'s account of the state it was left in when given."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            state = f": {describe()}" if describe else ""
            raise AssertionError(f"condition not met within {timeout:.1f} s{state}")
        time.sleep(interval)


@contextlib.contextmanager
def running_celery_worker(settings, *, purge=True):
    """A worker thread on the Redis from REDIS_URL (this suite's own database number),
    its queue emptied of messages left by earlier runs unless `purge` is False (a test that
    queued its own tasks before starting the worker purged it itself)."""
    assert settings.REDIS_URL.startswith("redis://"), "the task tests need REDIS_URL"
    settings.CELERY_BROKER_URL = settings.REDIS_URL
    celery_app.conf.broker_url = settings.REDIS_URL
    if purge:
        celery_app.control.purge()
    task_postrun.connect(close_worker_connections)
    try:
        with start_worker(celery_app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
            yield
    finally:
        task_postrun.disconnect(close_worker_connections)


def close_worker_connections(**kwargs):
    """Runs in the worker thread: its database connection must not outlive the test."""
    connections.close_all()


class Worker:
    """`celery worker` as its own process, on the test database and the test broker.

    `dispatch_concurrency` is its DISPATCH_CONCURRENCY: the most requests it has in flight,
    so the most recipients a SIGKILL may leave `unknown`."""

    def __init__(
        self,
        sandbox_url: str,
        queue: str,
        *,
        dispatch_concurrency: int = 8,
        clock: Path | None = None,
        slice_seconds: int = 5,
    ):
        """`clock`: a clock file the worker's clocks follow (tests.clocked)."""
        self.dispatch_concurrency = dispatch_concurrency
        self.hostname = f"{uuid.uuid4().hex}@test"
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_TASK_DEFAULT_QUEUE": queue,
            "RATE_LIMIT_REDIS_URL": settings.RATE_LIMIT_REDIS_URL,
            "WHATSAPP_GRAPH_URL": sandbox_url,
            "DISPATCH_CONCURRENCY": str(dispatch_concurrency),
            "DISPATCH_SLICE_SECONDS": str(slice_seconds),
            "OUTBOUND_WEBHOOK_ALLOW_LOOPBACK": "1",
        }
        launcher = [sys.executable, "-m"]
        if clock is not None:
            launcher += ["tests.clocked", str(clock)]
        self.process = subprocess.Popen(
            [*launcher, "celery", "-A", "config", "worker", "--pool", "threads",
             "--concurrency", "2", "--queues", queue, "--without-heartbeat", "--without-gossip",
             "--without-mingle", "--loglevel", "WARNING", "--hostname", self.hostname],
            cwd=settings.BASE_DIR,
            env=env,
            start_new_session=True,
        )  # fmt: skip

    def ready(self) -> bool:
        """It answers a ping on the broker, so it consumes its queue from now on."""
        assert self.process.poll() is None, "the worker exited"
        return bool(celery_app.control.ping(destination=[self.hostname], timeout=0.5))

    def idle(self) -> bool:
        """It runs no task and holds none in reserve."""
        inspect = celery_app.control.inspect(destination=[self.hostname], timeout=0.5)
        active, reserved = inspect.active() or {}, inspect.reserved() or {}
        return (
            self.hostname in active
            and not active[self.hostname]
            and not reserved.get(self.hostname)
        )

    def kill(self):
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


class RecordingReceiver:
    """A tiny HTTP server on a free port recording every POST (lower-cased headers, raw body)
    and answering the queued status codes in turn, then 200."""

    def __init__(self, path: str):
        self.requests: list[tuple[dict, bytes]] = []
        self.answers: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append(
                        ({k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    code = receiver.answers.pop(0) if receiver.answers else 200
                reply = b'{"ok": true}' if code < 300 else b"receiver is down"
                self.send_response(code)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, *codes: int) -> None:
        with self.lock:
            self.answers.extend(codes)

    def bodies(self) -> list[bytes]:
        with self.lock:
            return [body for _, body in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class SandboxProcess:
    """The Meta sandbox as a process of its own (`manage.py meta_sandbox`), as production
    and the benchmarks run it, exact like the suite's (no failed or unread statuses). A
    sandbox in the test's interpreter stalls behind its GIL and then stamps a backlog of
    requests at once, which a test of the rate at the receiver would read as a burst."""

    def __init__(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "meta_sandbox", "--port", str(port),
             "--ratio-async-failure", "0", "--no-limited-reporting"],
            cwd=settings.BASE_DIR,
            env={**os.environ, "DATABASE_URL": _database_url(), "LOG_LEVEL": "WARNING"},
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        wait_until(self._answers, timeout=60, interval=0.1)

    def _answers(self) -> bool:
        assert self.process.poll() is None, "meta_sandbox exited"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
            return True
        return False

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _database_url() -> str:
    """The test database, for a process of our own."""
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
