"""Shared start-up for bench scripts: a PostgreSQL database of their own, migrated."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/setter_bench"


def setup_django(database_url: str | None = None) -> None:
    """Point Django at the bench database (created if missing) and migrate it."""
    url = database_url or os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    _create_database(url)

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", run_syncdb=True, verbosity=0)


def _create_database(url: str) -> None:
    import dj_database_url
    import psycopg
    from psycopg import sql

    config = dj_database_url.parse(url)
    with psycopg.connect(
        host=config["HOST"] or "127.0.0.1",
        port=config["PORT"] or 5432,
        user=config["USER"] or "postgres",
        dbname="postgres",
        autocommit=True,
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, name: str, timeout: float = 30) -> None:
    """Block until something listens on port; exit if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"{name} exited before answering") from None
            time.sleep(0.1)
    process.terminate()
    raise SystemExit(f"{name} did not answer within {timeout:.0f} s")


def start_gunicorn(port: int, workers: int) -> subprocess.Popen:
    """The web app under gunicorn, with the bench's settings and DATABASE_URL."""
    command = [
        str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "-w", str(workers),
        "-b", f"127.0.0.1:{port}", "--timeout", "120",
    ]  # fmt: skip
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    wait_for_port(port, server, "gunicorn")
    return server


def start_sandbox(
    port: int, latency_ms: float = 0, webhook_url: str = "", flags: tuple[str, ...] = ()
) -> subprocess.Popen:
    """The Meta sandbox as its own process (it loads numbers and templates from the database);
    `flags` are further `meta_sandbox` options (faults)."""
    command = [
        sys.executable, str(ROOT / "manage.py"), "meta_sandbox", "--port", str(port),
        "--latency-ms", str(latency_ms), "--webhook-url", webhook_url, *flags,
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL)
    wait_for_port(port, process, "meta_sandbox")
    return process


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def bench_organization(label: str, **number_fields):
    """A fresh organization with a WhatsApp number and an approved MARKETING template."""
    from messaging.models import Category, MessageTemplate, WhatsAppNumber
    from setter.models import Organization

    stamp = str(time.time_ns())
    org = Organization.objects.create(name=f"{label} {stamp}", slug=f"{label}-{stamp}")
    number = WhatsAppNumber.objects.create(
        organization=org,
        display_phone_number="+1 555 0100",
        phone_number_id=f"{label}-{stamp}",
        waba_id=f"{label}-waba",
        access_token=f"{label}-token",
        mm_lite_terms_accepted=True,
        **number_fields,
    )
    template = MessageTemplate.objects.create(
        organization=org,
        name=f"{label}_template",
        category=Category.MARKETING,
        status=MessageTemplate.Status.APPROVED,
        body_text="Hi {{1}}",
    )
    return org, number, template


def timed(session, method, url, body: bytes | None, headers) -> tuple[float, dict]:
    """One HTTP call to the bench server: its wall time and JSON answer; any non-200 ends
    the bench with the answer, so a broken endpoint is never timed."""
    started = time.perf_counter()
    response = session.request(method, url, data=body, headers=headers, timeout=120)
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}: {response.text[:500]}")
    return seconds, response.json()
