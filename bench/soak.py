"""Soak benchmark of the embedded default: `runstack` alone, for a long time, as a newcomer runs it.

    .venv/bin/python bench/soak.py [--minutes 30] [--interval 180] [--lead 90]

Starts `manage.py runstack` on a fresh SETTER_VAR_DIR with no PostgreSQL, Redis or broker
variables (SQLite, the embedded broker, the built-in sandbox), and every --interval seconds
schedules a small utility campaign --lead seconds ahead through the REST API, each send's
parameter naming its campaign so the sandbox's records tell the sends apart. After the last
send was due it reads each send back and prints one JSON line: the supervisor's child
restarts, crashes (child deaths, or the stack itself dying), sends due / fired on time (dispatch
started within ON_TIME_SECONDS of scheduledFor) / late / missed, and messages the sandbox
accepted twice for one recipient of one send. Target: 0 crashes, late, missed and duplicates.
The test suite runs a 2-minute version (tests/config/test_embedded_stack.py).
"""

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_PHONE_NUMBER_ID = "100000000000001"  # the demo number runstack seeds
UTILITY_TEMPLATE = "order_shipped"
ON_TIME_SECONDS = 10
# After its due time, how long a send has to start before it counts as missed.
GRACE_SECONDS = 60
SERVICE_VARIABLES = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "RATE_LIMIT_REDIS_URL")
PERSONS = [f"+44 7400 9{n:05d}" for n in range(4)] + [f"+55 11 98000-{n:04d}" for n in range(4)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def utc_iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def parse_iso(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


class EmbeddedStack:
    """`runstack` in a session of its own on a fresh state folder, as `make run` starts it."""

    def __init__(self, var_dir: Path | None = None, start_timeout: float = 240, runstack_args=()):
        """`runstack_args`: more options, e.g. ("--sandbox-failure-ratio", "0") for a test
        that counts every message delivered."""
        self.var_dir = Path(var_dir or tempfile.mkdtemp(prefix="setter-soak-"))
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.sandbox_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.log_path = self.var_dir / "runstack.log"
        self.start_timeout = start_timeout
        self.runstack_args = list(runstack_args)
        self.process: subprocess.Popen | None = None
        self.http = requests.Session()

    def __enter__(self) -> "EmbeddedStack":
        env = {key: value for key, value in os.environ.items() if key not in SERVICE_VARIABLES}
        env.update(SETTER_VAR_DIR=str(self.var_dir), PYTHONUNBUFFERED="1")
        for variable in (
            "STATIC_ROOT",
            "MEDIA_ROOT",
            "CELERY_BROKER_DIR",
            "DJANGO_SETTINGS_MODULE",
        ):
            env.pop(variable, None)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "runstack", "--port", str(self.port),
                 "--sandbox-port", str(self.sandbox_port), *self.runstack_args],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        try:
            self._wait_for("Setter Campaigns is running", self.start_timeout)
        except BaseException:
            self.stop()
            raise
        credentials = json.loads((self.var_dir / "demo-credentials.json").read_text())
        self.http.headers["Authorization"] = f"Bearer {credentials['api_key']}"
        self.credentials = credentials
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if not self.alive():
                raise RuntimeError(f"runstack exited before {text!r}:\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {text!r} within {timeout:g} s:\n{self.log()[-4000:]}")
            time.sleep(0.5)

    def stop(self) -> bool:
        """SIGTERM the session as Ctrl-C would; True when runstack said it stopped cleanly."""
        if self.process is None:
            return False
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return "\nStopped.\n" in self.log()

    def supervisor_state(self) -> dict:
        return json.loads((self.var_dir / "supervisor.json").read_text())

    def kill_child(self, name: str) -> int:
        """SIGKILL a child's whole process group, as a crash or the OOM killer would."""
        pid = self.supervisor_state()["children"][name]
        os.killpg(pid, signal.SIGKILL)
        return pid

    def api(self, method: str, path: str, **kwargs) -> dict:
        response = self.http.request(method, f"{self.url}/api/v1/{path}", timeout=30, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else {}

    def create_segment(self, name: str) -> str:
        persons = [{"phone": phone, "externalId": f"soak-{n}"} for n, phone in enumerate(PERSONS)]
        body = self.api("POST", "segments", json={"name": name, "persons": persons})
        return body["data"]["id"]

    def schedule_campaign(self, campaign_id: str, segment_id: str, at: dt.datetime) -> dict:
        """A one-send utility campaign whose parameter is its own id, started for `at`."""
        self.api(
            "POST",
            "campaigns",
            json={
                "id": campaign_id,
                "name": f"Soak {campaign_id}",
                "senderId": SANDBOX_PHONE_NUMBER_ID,
                "segmentIds": [segment_id],
                "sends": [{"template": UTILITY_TEMPLATE, "parameters": [campaign_id]}],
            },
        )
        return self.api(
            "POST", f"campaigns/{campaign_id}/start", json={"scheduledFor": utc_iso(at)}
        )

    def campaign(self, campaign_id: str) -> dict:
        return self.api("GET", f"campaigns/{campaign_id}")["campaign"]

    def sandbox_requests(self) -> list[dict]:
        response = self.http.get(
            f"{self.sandbox_url}/_sandbox/requests", params={"limit": 100_000}, timeout=30
        )
        response.raise_for_status()
        return response.json()["requests"]


def judge_send(send: dict, now: dt.datetime) -> str:
    """on_time, late, missed or pending (not yet due + grace) for one send of the API."""
    scheduled_for = parse_iso(send["scheduledFor"])
    started_at = send["stats"]["startedAt"]
    if started_at is not None:
        lateness = (parse_iso(started_at) - scheduled_for).total_seconds()
        return "on_time" if lateness <= ON_TIME_SECONDS else "late"
    if send["status"] == "missed" or now > scheduled_for + dt.timedelta(seconds=GRACE_SECONDS):
        return "missed"
    return "pending"


def duplicates(records: list[dict]) -> int:
    """Recipients the sandbox accepted more than one message for within one send."""
    accepted = Counter((r["to"], tuple(r["parameters"])) for r in records if r["wamid"])
    return sum(1 for count in accepted.values() if count > 1)


def soak(minutes: float, interval: float, lead: float, stack: EmbeddedStack) -> dict:
    """Schedule campaigns for `minutes`, wait until each was due plus grace, and judge them."""
    started = time.monotonic()
    segment_id = stack.create_segment("Soak audience")
    campaigns = []
    deadline = started + minutes * 60
    while time.monotonic() + lead < deadline:
        campaign_id = f"soak-{len(campaigns) + 1}"
        due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lead)
        stack.schedule_campaign(campaign_id, segment_id, due)
        campaigns.append((campaign_id, due))
        next_at = time.monotonic() + interval
        while time.monotonic() < min(next_at, deadline) and stack.alive():
            time.sleep(1)
        if not stack.alive():
            break

    verdicts = Counter()
    last_due = campaigns[-1][1] if campaigns else dt.datetime.now(dt.UTC)
    settle_until = last_due + dt.timedelta(seconds=GRACE_SECONDS)
    for campaign_id, _ in campaigns:
        while stack.alive():
            now = dt.datetime.now(dt.UTC)
            send = stack.campaign(campaign_id)["sends"][0]
            verdict = judge_send(send, now)
            if verdict != "pending" and (
                send["status"] in ("completed", "missed") or now > settle_until
            ):
                break
            time.sleep(2)
        verdicts[verdict if stack.alive() else "missed"] += 1

    records = stack.sandbox_requests() if stack.alive() else []
    restarts = stack.supervisor_state()["restarts"] if stack.alive() else {}
    log = stack.log()
    return {
        "minutes": round((time.monotonic() - started) / 60, 2),
        "child_restarts": sum(restarts.values()),
        "restarts_per_child": restarts,
        "crashes": log.count("; restarting in ") + (0 if stack.alive() else 1),
        "sends_due": len(campaigns),
        "fired_on_time": verdicts["on_time"],
        "late": verdicts["late"],
        "missed": verdicts["missed"],
        "messages_accepted": sum(1 for r in records if r["wamid"]),
        "duplicates": duplicates(records),
        "broker_files_rejected": log.count("Skipped broker file"),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--interval", type=float, default=180, help="Seconds between campaigns.")
    parser.add_argument("--lead", type=float, default=90, help="Seconds from scheduling to due.")
    args = parser.parse_args()
    if args.minutes <= 0 or args.interval <= 0 or args.lead <= 0:
        parser.error("--minutes, --interval and --lead must be positive")
    with EmbeddedStack() as stack:
        result = soak(args.minutes, args.interval, args.lead, stack)
        result["stopped_cleanly"] = stack.stop()
    clean = result["stopped_cleanly"] and not any(
        result[key] for key in ("crashes", "late", "missed", "duplicates")
    )
    if clean:  # the state folder holds the demo's credentials: keep it only to look into
        shutil.rmtree(stack.var_dir, ignore_errors=True)
    else:
        print(f"kept the stack's state and logs in {stack.var_dir}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
