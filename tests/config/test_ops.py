"""Ops endpoints: liveness, readiness per component, Prometheus metrics, JSON log lines."""

import datetime as dt
import io
import json
import logging

import pytest
from django.core.management import call_command
from django.db import OperationalError
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from campaigns.models import Send, SendRecipient
from config.celery import app as celery_app
from config.ops import health
from config.ops.logging import JsonFormatter
from messaging.models import Category
from tests.factories import SendFactory

pytestmark = pytest.mark.django_db


def beat_heartbeat(age_seconds):
    every_second = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
    return PeriodicTask.objects.create(
        name="engine-tick",
        task="campaigns.tasks.engine_tick_task",
        interval=every_second,
        last_run_at=timezone.now() - dt.timedelta(seconds=age_seconds),
    )


@pytest.fixture
def broker_down():
    """Point the app's publishing connection at a port nothing listens on, then put it back.

    (With Django's CELERY_ namespace, broker_write_url is the key the app reads, and it
    already holds the broker URL, so that is the one to swap.)"""
    real_url = celery_app.conf.broker_write_url
    celery_app.conf.broker_write_url = "redis://127.0.0.1:1/0"
    yield
    celery_app.conf.broker_write_url = real_url


def test_healthz_answers_without_touching_anything(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ok_when_database_broker_and_beat_answer(client):
    beat_heartbeat(age_seconds=2)

    response = client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    components = body["components"]
    assert set(components) == {"database", "broker", "beat"}
    assert all(component["ok"] for component in components.values())
    assert components["beat"]["last_tick"].endswith("Z")
    assert 2 <= components["beat"]["age_s"] < 30


def test_readyz_is_unavailable_with_the_broker_down(client, broker_down):
    beat_heartbeat(age_seconds=2)

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    broker = body["components"]["broker"]
    assert broker["ok"] is False
    assert "Connection refused" in broker["error"] or "Error 111" in broker["error"]
    assert body["components"]["database"]["ok"] is True
    assert body["components"]["beat"]["ok"] is True


def test_readyz_is_unavailable_when_beat_stopped_ticking(client, settings):
    settings.BEAT_HEARTBEAT_MAX_AGE_SECONDS = 30
    beat_heartbeat(age_seconds=90)

    response = client.get("/readyz")

    assert response.status_code == 503
    beat = response.json()["components"]["beat"]
    assert beat["ok"] is False
    assert 90 <= beat["age_s"] < 120
    assert "older than 30 s" in beat["error"]


def test_readyz_is_unavailable_before_beat_ever_ticked(client):
    response = client.get("/readyz")

    assert response.status_code == 503
    beat = response.json()["components"]["beat"]
    assert beat == {"ok": False, "error": "beat has not sent the engine tick yet", "ms": beat["ms"]}


def test_readyz_is_unavailable_when_the_database_fails(client, monkeypatch):
    """Taking the test database down would end the test too, so only the probe's cursor fails."""
    beat_heartbeat(age_seconds=2)

    class LostConnection:
        def cursor(self):
            raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(health, "connection", LostConnection())

    response = client.get("/readyz")

    assert response.status_code == 503
    database = response.json()["components"]["database"]
    assert database["ok"] is False
    assert database["error"] == "OperationalError: server closed the connection unexpectedly"
    assert response.json()["components"]["broker"]["ok"] is True


def make_recipient(send, status, phone, **fields):
    return SendRecipient.objects.create(send=send, phone_e164=phone, status=status, **fields)


def test_metrics_after_a_marketing_send(client, settings):
    settings.SEND_MATERIALIZE_AHEAD_SECONDS = 60
    fire_at = timezone.now() - dt.timedelta(minutes=5)
    send = SendFactory(
        category=Category.MARKETING,
        scheduled_for=fire_at,
        status=Send.Status.COMPLETED,
        materialized_at=fire_at - dt.timedelta(seconds=55),
        started_at=fire_at,
        completed_at=fire_at + dt.timedelta(seconds=30),
    )
    Status = SendRecipient.Status
    make_recipient(send, Status.SENT, "+447700900001", sent_at=fire_at)
    make_recipient(send, Status.DELIVERED, "+447700900002", sent_at=fire_at, delivered_at=fire_at)
    make_recipient(send, Status.FAILED, "+447700900003", error_code="131026", failed_at=fire_at)
    make_recipient(send, Status.QUEUED, "+447700900004")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    lines = set(response.content.decode().splitlines())
    assert {
        'setter_messages{category="MARKETING",status="delivered"} 1.0',
        'setter_messages{category="MARKETING",status="failed"} 1.0',
        'setter_messages{category="MARKETING",status="queued"} 1.0',
        'setter_messages{category="MARKETING",status="sent"} 1.0',
        'setter_messages_sent_total{category="MARKETING"} 2.0',
        'setter_messages_failed_total{category="MARKETING",error_code="131026"} 1.0',
        "setter_recipients_queued 1.0",
        'setter_sends{status="completed"} 1.0',
        "setter_send_dispatch_seconds_count 1.0",
        "setter_send_dispatch_seconds_sum 30.0",
        "setter_send_materialization_lag_seconds_count 1.0",
        "setter_send_materialization_lag_seconds_sum 5.0",
    } <= lines
    assert not any(line.startswith('setter_messages{category="UTILITY"') for line in lines)


def test_metrics_want_the_bearer_token_when_one_is_set(client, settings):
    settings.METRICS_TOKEN = "scrape-secret"

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert response.status_code == 200
    assert "setter_recipients_queued 0.0" in response.content.decode().splitlines()


def test_json_log_lines_carry_the_engine_ids():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.ops.json")
    logger.addHandler(handler)
    try:
        logger.warning(
            "send %s paused", 7, extra={"campaign_id": 3, "send_id": 7, "recipient_id": 42}
        )
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("dispatch error", extra={"send_id": 7})
    finally:
        logger.removeHandler(handler)

    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "WARNING"
    assert first["logger"] == "tests.ops.json"
    assert first["message"] == "send 7 paused"
    assert (first["campaign_id"], first["send_id"], first["recipient_id"]) == (3, 7, 42)
    assert first["time"].endswith("Z")
    assert dt.datetime.fromisoformat(first["time"]) <= timezone.now()
    assert second["send_id"] == 7
    assert "ValueError: boom" in second["exception"]


def test_engine_status_lists_due_and_running_sends_with_recipient_counts():
    now = timezone.now()
    running = SendFactory(status=Send.Status.SENDING, scheduled_for=now - dt.timedelta(minutes=1))
    make_recipient(running, SendRecipient.Status.QUEUED, "+447700900011")
    make_recipient(running, SendRecipient.Status.SENT, "+447700900012", sent_at=now)
    due_soon = SendFactory(scheduled_for=now + dt.timedelta(hours=2))
    SendFactory(scheduled_for=now + dt.timedelta(days=3))
    SendFactory(status=Send.Status.COMPLETED, scheduled_for=now - dt.timedelta(hours=1))
    out = io.StringIO()

    call_command("engine_status", "--hours", "6", "--json", stdout=out)

    entries = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [entry["send_id"] for entry in entries] == [running.pk, due_soon.pk]
    assert entries[0]["status"] == "sending"
    assert entries[0]["recipients"] == {"queued": 1, "sent": 1}
    assert entries[1]["recipients"] == {}


def test_readyz_shows_the_supervisors_restart_counts_under_runstack(client, settings, tmp_path):
    beat_heartbeat(age_seconds=2)
    state_file = tmp_path / "supervisor.json"
    state_file.write_text(json.dumps({"pid": 1, "restarts": {"web": 0, "worker": 2}}))
    settings.SUPERVISOR_STATE_FILE = str(state_file)

    body = client.get("/readyz").json()

    assert body["status"] == "ok"
    assert body["supervisor"] == {"restarts": {"web": 0, "worker": 2}}


def test_readyz_has_no_supervisor_section_outside_runstack(client, settings):
    settings.SUPERVISOR_STATE_FILE = ""
    beat_heartbeat(age_seconds=2)

    assert "supervisor" not in client.get("/readyz").json()
