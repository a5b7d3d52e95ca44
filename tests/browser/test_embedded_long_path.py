"""The long path on the embedded default, watched in the browser: `runstack` as `make run`
starts it (SQLite, the embedded broker, the sandbox), a two-send campaign whose first send
fires while the page is open, then the worker killed (SIGKILL of its process group, as a crash
would) and restarted by the supervisor, then the second send firing on the same page.

The stack is a real `runstack` in a session of its own, so the kill reaches its supervisor
exactly as in production; the browser logs in with the credentials it stored."""

import datetime as dt

import pytest
from playwright.sync_api import expect

from bench.soak import EmbeddedStack, utc_iso
from tests.browser.conftest import browser_page, log_in
from tests.support import wait_until

FIRST_IN = dt.timedelta(seconds=30)
SECOND_AFTER_MINUTES = 1


@pytest.fixture
def stack(tmp_path):
    # The demo sandbox fails 2% of messages after accepting them, as Meta does; these tests
    # count every message delivered, so theirs fails none.
    exact = ("--sandbox-failure-ratio", "0")
    with EmbeddedStack(tmp_path / "var", runstack_args=exact) as running:
        yield running
    assert "\nStopped.\n" in running.log()


@pytest.fixture
def stack_page(browser, stack, request):
    with browser_page(browser, stack.url, request) as page:
        yield page


def test_sends_fire_around_a_worker_the_supervisor_restarts(stack, stack_page):
    page = stack_page
    segment_id = stack.create_segment("Long path")
    stack.api(
        "POST",
        "campaigns",
        json={
            "id": "long-path",
            "name": "Long path",
            "senderId": "100000000000001",
            "segmentIds": [segment_id],
            "sends": [
                {"template": "order_shipped", "parameters": ["first"]},
                {
                    "template": "order_shipped",
                    "parameters": ["second"],
                    "schedule": {"startOffsetMinutes": SECOND_AFTER_MINUTES},
                },
            ],
        },
    )
    start = dt.datetime.now(dt.UTC) + FIRST_IN
    stack.api("POST", "campaigns/long-path/start", json={"scheduledFor": utc_iso(start)})

    log_in(page, "demo-admin", stack.credentials["admin_password"])
    page.goto("/admin/campaigns/campaign/?q=long-path")
    page.get_by_role("link", name="Long path").click()
    expect(page.locator("[data-campaign-status]")).to_have_text("scheduled")
    first, second = page.locator(".send-analytics").all()
    page.screenshots("scheduled")

    expect(first.locator(".send-progress-label")).to_have_text("100%", timeout=90_000)
    expect(second.locator(".send-progress-label")).to_have_text("0%")
    page.screenshots("first-send-fired")

    killed = stack.kill_child("worker")
    state = wait_until(
        lambda: (s := stack.supervisor_state())["restarts"]["worker"] == 1 and s, timeout=30
    )
    assert state["children"]["worker"] != killed
    page.goto("/readyz")
    expect(page.locator("body")).to_contain_text('"worker": 1')
    page.screenshots("readyz-after-restart")
    page.go_back()

    expect(page.locator(".send-analytics").nth(1).locator(".send-progress-label")).to_have_text(
        "100%", timeout=150_000
    )
    expect(page.locator("[data-campaign-status]")).to_have_text("completed", timeout=30_000)
    expect(page.locator("[data-transition]")).to_have_count(0)
    page.screenshots("second-send-fired")

    sends = stack.campaign("long-path")["sends"]
    assert [s["status"] for s in sends] == ["completed", "completed"]
    assert [s["stats"]["messagesSent"] for s in sends] == [8, 8]
    second_started = dt.datetime.fromisoformat(
        sends[1]["stats"]["startedAt"].replace("Z", "+00:00")
    )
    due = start + dt.timedelta(minutes=SECOND_AFTER_MINUTES)
    assert (second_started - due).total_seconds() <= 10  # on time despite the restart
    assert "worker  | exited with code -9; restarting in 0.5 s (restart 1)" in stack.log()
