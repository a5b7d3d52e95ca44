"""The sandbox as Meta on a busy day: slow answers, what it records of every request, and its
realistic defaults (a few failures, no reads where Meta reports none)."""

import random
import time

import pytest
import requests

from config.management.commands import runstack
from messaging.errors import ThroughputLimited, TransientError
from messaging.management.commands.meta_sandbox import Command as SandboxCommand
from messaging.sandbox.app import Sandbox, _answer_delay
from messaging.sandbox.state import Registry, SandboxConfig, SandboxNumber
from messaging.sandbox.stats import max_in_any_window
from messaging.sandbox.webhooks import Accepted, StatusNotifier
from tests.messaging.test_client import GB_PHONE, send
from tests.support import wait_until

pytestmark = pytest.mark.django_db

BR_PHONE = "+5511912345678"


@pytest.mark.parametrize(
    ("stamps", "peak"),
    [
        ([], 0),
        ([5.0], 1),
        ([0.0, 0.5, 0.999, 1.0], 3),  # a window is [t, t + 1): 1.0 starts the next one
        ([0.9, 1.1, 1.2, 1.3, 2.05], 4),  # a sliding window, not calendar seconds (2 + 3)
        ([3.0, 1.0, 2.5, 2.0, 1.5], 2),  # any order
    ],
)
def test_max_in_any_window_counts_a_sliding_window(stamps, peak):
    assert max_in_any_window(stamps) == peak


def test_max_in_any_window_takes_other_widths():
    assert max_in_any_window([0.0, 0.1, 0.2, 0.3], width=0.25) == 3


def test_a_slow_answer_comes_late_and_is_recorded_at_its_arrival(
    whatsapp_client, sandbox, number, marketing_template
):
    sandbox.configure(ratio_slow=1.0, slow_ms_min=300, slow_ms_max=400)
    before = time.time()
    started = time.monotonic()

    result = send(whatsapp_client, number, marketing_template)

    took = time.monotonic() - started
    assert 0.3 <= took < 2.0
    [record] = sandbox.requests()["requests"]
    assert record["wamid"] == result.wamid
    assert record["http_status"] == 200
    assert 0.3 <= record["answered_at"] - record["at"] <= 0.45
    assert before <= record["received_at"] <= before + 0.2


def test_without_slow_answers_none_is_late(whatsapp_client, sandbox, number, marketing_template):
    sandbox.configure(ratio_slow=0.0, slow_ms_min=2000, slow_ms_max=3000)

    for n in range(5):
        send(whatsapp_client, number, marketing_template, to=f"+4477009{n:05d}")

    records = sandbox.requests()["requests"]
    assert max(r["answered_at"] - r["at"] for r in records) < 0.5


def test_a_share_of_answers_is_slow():
    """The share drawn is the share configured (seeded draws, no sending needed)."""
    config = SandboxConfig(ratio_slow=0.03, slow_ms_min=1000, slow_ms_max=3000, seed=7)
    sandbox = Sandbox(config, Registry())
    delays = [_answer_delay(sandbox) for _ in range(20_000)]

    slow = [d for d in delays if d]
    assert 0.025 <= len(slow) / len(delays) <= 0.035
    assert min(slow) >= 1.0 and max(slow) <= 3.0


def test_every_answer_is_recorded_with_its_status_code_and_counted(
    whatsapp_client, sandbox, number, marketing_template
):
    sandbox.configure(ratio_429=1.0)
    with pytest.raises(ThroughputLimited):
        send(whatsapp_client, number, marketing_template, to="+447700900001")
    sandbox.configure(ratio_429=0.0, ratio_5xx=1.0)
    with pytest.raises(TransientError):
        send(whatsapp_client, number, marketing_template, to="+447700900002")
    sandbox.configure(ratio_5xx=0.0)
    send(whatsapp_client, number, marketing_template, to="+447700900003")

    records = sandbox.requests()["requests"]
    by_status = {}
    for record in records:
        by_status.setdefault(record["http_status"], set()).add(record["to"])
        assert bool(record["wamid"]) == (record["http_status"] == 200)
    assert by_status[429] == {"447700900001"}
    assert by_status[500] == {"447700900002"}
    assert by_status[200] == {"447700900003"}
    stats = sandbox.stats()
    assert stats["http_statuses"] == {
        str(code): sum(1 for r in records if r["http_status"] == code) for code in by_status
    }
    assert stats["max_requests_in_any_second"] == max_in_any_window(r["at"] for r in records)
    assert stats["max_requests_in_any_second"] >= 3


def test_slow_settings_are_validated(sandbox):
    before = sandbox.configure()

    for bad in [
        {"ratio_slow": 1.5},
        {"slow_ms_min": -1},
        {"slow_ms_min": 3000, "slow_ms_max": 1000},
        {"limited_reporting": "yes"},
    ]:
        response = requests.post(f"{sandbox.url}/_sandbox/config", json=bad, timeout=5)
        assert response.status_code == 400, bad
        assert response.json()["error"]

    assert sandbox.configure() == before


def test_no_reads_from_limited_reporting_regions(
    whatsapp_client, sandbox, number, marketing_template, webhook_receiver
):
    sandbox.configure(limited_reporting=True)
    uk = send(whatsapp_client, number, marketing_template, to=GB_PHONE).wamid
    brazil = send(whatsapp_client, number, marketing_template, to=BR_PHONE).wamid

    def statuses_of(wamid):
        return [s["status"] for s in webhook_receiver.statuses() if s["id"] == wamid]

    wait_until(lambda: "read" in statuses_of(brazil))
    # Both were scheduled with the same delays: the UK read would have come with Brazil's.
    wait_until(lambda: sandbox.stats()["webhooks"]["pending"] == 0)
    assert statuses_of(brazil) == ["sent", "delivered", "read"]
    assert statuses_of(uk) == ["sent", "delivered"]


def test_realistic_defaults_fail_two_percent_with_131026_and_read_no_uk_message():
    config = SandboxConfig(webhook_url="http://127.0.0.1:9/", seed=3)
    assert (config.ratio_async_failure, config.async_failure_code) == (0.02, 131026)
    notifier = StatusNotifier(config, random.Random(3))
    number = SandboxNumber("1", "2", "token")

    def accepted(n, limited_reporting):
        return Accepted(number, f"{n}", f"wamid.{n}", "", "marketing_lite", "c", limited_reporting)

    for n in range(10_000):
        notifier.schedule(accepted(n, limited_reporting=n % 2 == 0))

    by_status = {}
    for _, _, message, status, code in notifier.pending:
        by_status.setdefault(status, []).append((message, code))
    assert 0.015 <= len(by_status["failed"]) / 10_000 <= 0.025
    assert {code for _, code in by_status["failed"]} == {131026}
    assert not any(message.limited_reporting for message, _ in by_status["read"])
    assert len(by_status["read"]) == 5_000 - sum(
        1 for message, _ in by_status["failed"] if not message.limited_reporting
    )


def test_the_command_and_runstack_default_to_the_realistic_sandbox():
    options = SandboxCommand().create_parser("manage.py", "meta_sandbox").parse_args([])
    defaults = SandboxConfig()
    assert options.ratio_async_failure == defaults.ratio_async_failure == 0.02
    assert options.limited_reporting is defaults.limited_reporting is True
    assert options.ratio_slow == defaults.ratio_slow == 0.0
    flags = (
        SandboxCommand()
        .create_parser("manage.py", "meta_sandbox")
        .parse_args(["--ratio-slow", "0.03", "--slow-ms-min", "1000", "--no-limited-reporting"])
    )
    assert (flags.ratio_slow, flags.slow_ms_min, flags.limited_reporting) == (0.03, 1000, False)

    parsed = runstack.Command().create_parser("manage.py", "runstack").parse_args([])
    assert parsed.sandbox_failure_ratio == 0.02
    parsed = (
        runstack.Command()
        .create_parser("manage.py", "runstack")
        .parse_args(["--sandbox-failure-ratio", "0"])
    )
    assert parsed.sandbox_failure_ratio == 0.0
    children = runstack._children(8000, 8765, "http://127.0.0.1:8000", 0.0)
    [sandbox_child] = [child for child in children if child.name == "sandbox"]
    assert sandbox_child.argv[-2:] == ["--ratio-async-failure", "0.0"]
