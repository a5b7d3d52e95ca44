"""Liveness (/healthz) and readiness (/readyz) probes.

/healthz does no I/O: it answers while the process can serve a request. /readyz checks what
the product needs to make progress: the database, the Celery broker, and beat's engine tick.
Beat's DatabaseScheduler writes the "engine-tick" PeriodicTask's last_run_at each time it
sends the tick (CELERY_BEAT_SYNC_EVERY=1), so that row is beat's heartbeat. Under `runstack`
it also shows how often the supervisor restarted each child.
"""

import json
import time
from datetime import UTC
from functools import wraps
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_celery_beat.models import PeriodicTask

from config.celery import app as celery_app

ENGINE_TICK_TASK_NAME = "engine-tick"


def _component_check(check):
    """Time a check and turn any exception into a failed component naming the error."""

    @wraps(check)
    def timed():
        started = time.monotonic()
        try:
            result = check()
        except Exception as error:
            result = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        result["ms"] = round((time.monotonic() - started) * 1000, 1)
        return result

    return timed


@_component_check
def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True}


@_component_check
def check_broker() -> dict:
    timeout = settings.READINESS_TIMEOUT_SECONDS
    with celery_app.connection_for_write(connect_timeout=timeout) as broker:
        # kombu takes the timeout in (fractional) seconds; its stub says int.
        broker.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)  # type: ignore[arg-type]
    return {"ok": True}


@_component_check
def check_beat() -> dict:
    last_tick = (
        PeriodicTask.objects.filter(name=ENGINE_TICK_TASK_NAME)
        .values_list("last_run_at", flat=True)
        .first()
    )
    if last_tick is None:
        return {"ok": False, "error": "beat has not sent the engine tick yet"}
    age = (timezone.now() - last_tick).total_seconds()
    max_age = settings.BEAT_HEARTBEAT_MAX_AGE_SECONDS
    result = {
        "ok": age <= max_age,
        "last_tick": last_tick.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "age_s": round(age, 1),
    }
    if not result["ok"]:
        result["error"] = f"the last engine tick is older than {max_age} s"
    return result


@require_GET
@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
def readyz(request):
    components = {
        "database": check_database(),
        "broker": check_broker(),
        "beat": check_beat(),
    }
    ready = all(component["ok"] for component in components.values())
    body = {"status": "ok" if ready else "unavailable", "components": components}
    supervisor = supervisor_state()
    if supervisor is not None:
        body["supervisor"] = supervisor
    return JsonResponse(body, status=200 if ready else 503)


def supervisor_state() -> dict | None:
    """`runstack`'s restart counts per child: informative, a restarted stack is still ready."""
    if not settings.SUPERVISOR_STATE_FILE:
        return None
    try:
        state = json.loads(Path(settings.SUPERVISOR_STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return {"error": f"{type(error).__name__}: {error}"}
    return {"restarts": state["restarts"]}
