"""The embedded default as `make run` starts it (runstack: SQLite, the embedded broker, the
sandbox; no PostgreSQL or Redis) stays up and fires its sends on time, even when the worker dies.

Each test runs a whole stack in a session of its own: the soak is bench/soak.py's run cut to two
minutes; the other kills the worker the way a crash would and waits for the supervisor.
"""

import datetime as dt

import pytest

from bench.soak import EmbeddedStack, judge_send, soak
from tests.support import wait_until


@pytest.fixture
def stack(tmp_path):
    # The demo sandbox fails 2% of messages after accepting them, as Meta does; these tests
    # count every message delivered, so theirs fails none.
    exact = ("--sandbox-failure-ratio", "0")
    with EmbeddedStack(tmp_path / "var", runstack_args=exact) as running:
        yield running
    assert "\nStopped.\n" in running.log()


def test_a_two_minute_soak_fires_every_send_on_time_once(stack):
    result = soak(minutes=2, interval=30, lead=30, stack=stack)

    assert result["sends_due"] >= 3
    assert result["fired_on_time"] == result["sends_due"], result
    assert (result["late"], result["missed"], result["duplicates"]) == (0, 0, 0), result
    assert (result["crashes"], result["child_restarts"]) == (0, 0), result
    assert result["messages_accepted"] == result["sends_due"] * 8, result


def test_a_killed_worker_is_restarted_and_the_next_due_send_fires(stack):
    segment_id = stack.create_segment("Kill test")
    killed_pid = stack.kill_child("worker")

    restarted = wait_until(
        lambda: stack.supervisor_state()["restarts"]["worker"] == 1 and stack.supervisor_state(),
        timeout=30,
    )
    assert restarted["children"]["worker"] != killed_pid
    assert "worker  | exited with code -9; restarting in 0.5 s (restart 1)" in stack.log()
    readyz = stack.http.get(f"{stack.url}/readyz", timeout=10).json()
    assert readyz["supervisor"]["restarts"]["worker"] == 1

    due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=20)
    stack.schedule_campaign("after-kill", segment_id, due)

    def fired():
        send = stack.campaign("after-kill")["sends"][0]
        return send["status"] == "completed" and send

    send = wait_until(fired, timeout=120, interval=1)
    assert judge_send(send, dt.datetime.now(dt.UTC)) == "on_time"
    assert send["stats"]["messagesSent"] == 8
    assert stack.alive()
