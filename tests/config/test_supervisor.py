"""`runstack`'s supervisor: every child and everything it started goes when the stack stops."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from config.management.supervisor import Child, ChildExited, Supervisor
from tests.support import wait_until

PYTHON = sys.executable


def python_child(name: str, code: str) -> Child:
    return Child(name, [PYTHON, "-c", textwrap.dedent(code)])


# Prints its pid and a grandchild's pid, then idles; the grandchild ignores SIGTERM.
STUBBORN_GRANDPARENT = """
    import os, subprocess, sys, time
    grandchild = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"])
    print("pids", os.getpid(), grandchild.pid, flush=True)
    time.sleep(300)
"""
IGNORES_SIGTERM = """
    import os, signal, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("pids", os.getpid(), flush=True)
    time.sleep(300)
"""


def is_gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for init to collect it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def pump_until_pids(supervisor: Supervisor, out: io.StringIO, expected_lines: int) -> list[int]:
    def printed():
        supervisor.pump(0.1)
        return out.getvalue().count("pids") >= expected_lines

    wait_until(printed)
    return [
        int(pid) for pids in re.findall(r"pids ([\d ]+)", out.getvalue()) for pid in pids.split()
    ]


def test_stop_ends_children_and_their_stubborn_grandchildren(tmp_path):
    out = io.StringIO()
    supervisor = Supervisor(
        [python_child("parent", STUBBORN_GRANDPARENT), python_child("mule", IGNORES_SIGTERM)],
        out=out,
        log_dir=tmp_path,
        stop_timeout=1,
    )
    supervisor.start()
    pids = pump_until_pids(supervisor, out, expected_lines=2)
    assert len(pids) == 3 and not any(is_gone(pid) for pid in pids)

    try:
        supervisor.stop()
        wait_until(lambda: all(is_gone(pid) for pid in pids))
    finally:
        for pid in pids:
            if not is_gone(pid):
                os.kill(pid, signal.SIGKILL)
    assert "mule   | did not stop within 1 s: killed" in out.getvalue()
    assert (tmp_path / "parent.log").read_text().startswith("pids ")


def test_output_is_prefixed_with_the_child_name_and_logged(tmp_path):
    out = io.StringIO()
    supervisor = Supervisor(
        [python_child("web", "print('one'); print('two', end='')")], out=out, log_dir=tmp_path
    )
    supervisor.start()
    wait_until(lambda: supervisor.first_exited() is not None)
    supervisor.stop()

    assert out.getvalue() == "web | one\nweb | two\n"
    assert (tmp_path / "web.log").read_text() == "one\ntwo\n"


# Dies with code 3 on its first run, then idles: the restarted one stays up.
DIES_ONCE = """
    import os, sys, time
    marker = sys.argv[1]
    print("pids", os.getpid(), flush=True)
    if not os.path.exists(marker):
        open(marker, "w").close()
        sys.exit(3)
    time.sleep(300)
"""


def test_a_dead_child_is_restarted_with_a_log_line_and_a_count(tmp_path):
    out = io.StringIO()
    flaky = Child("flaky", [PYTHON, "-c", textwrap.dedent(DIES_ONCE), str(tmp_path / "died")])
    state_file = tmp_path / "supervisor.json"
    supervisor = Supervisor(
        [flaky, python_child("steady", IGNORES_SIGTERM)],
        out=out,
        stop_timeout=1,
        restart_backoff=0.2,
        state_file=state_file,
    )
    supervisor.start()
    try:

        def restarted():
            supervisor.pump(0.1)
            supervisor.restart_dead_children()
            return out.getvalue().count("flaky  | pids") == 2

        wait_until(restarted)
        pids = [int(pid) for pid in re.findall(r"flaky  \| pids (\d+)", out.getvalue())]
        assert is_gone(pids[0]) and not is_gone(pids[1])
        assert "flaky  | exited with code 3; restarting in 0.2 s (restart 1)" in out.getvalue()
        assert f"flaky  | restarted (pid {pids[1]})" in out.getvalue()
        assert "Restarts so far: flaky 1, steady 0" in out.getvalue()
        assert json.loads(state_file.read_text())["restarts"] == {"flaky": 1, "steady": 0}
        assert supervisor.stop_signal is None
    finally:
        supervisor.stop()


def test_a_crash_loop_stops_the_stack_and_names_the_child():
    out = io.StringIO()
    survivor = python_child("survivor", IGNORES_SIGTERM)
    supervisor = Supervisor(
        [survivor, python_child("crasher", "import sys; sys.exit(3)")],
        out=out,
        stop_timeout=1,
        crash_loop_deaths=3,
        restart_backoff=0.05,
    )

    with pytest.raises(ChildExited) as raised:
        supervisor.run()

    assert (raised.value.name, raised.value.returncode) == ("crasher", 3)
    assert str(raised.value) == "crasher died 3 times within 60 s (last exit code 3)"
    assert out.getvalue().count("crasher  | restarted") == 2
    assert is_gone(survivor.process.pid)


RUN_UNTIL_SIGNALLED = """
    import sys
    from config.management.supervisor import Child, Supervisor

    child = Child("sleeper", [sys.executable, "-c",
        "import os, time; print('pids', os.getpid(), flush=True); time.sleep(300)"])
    stopped_by = Supervisor([child]).run(on_ready=lambda: print("ready", flush=True))
    print("stopped by", stopped_by, flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_stack_and_exits_cleanly(signum):
    stack = subprocess.Popen(
        [PYTHON, "-c", textwrap.dedent(RUN_UNTIL_SIGNALLED)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    first_lines = stack.stdout.readline() + stack.stdout.readline()
    assert "ready\n" in first_lines
    child_pid = int(re.search(r"sleeper \| pids (\d+)", first_lines).group(1))

    stack.send_signal(signum)

    rest, _ = stack.communicate(timeout=20)
    assert stack.returncode == 0
    assert rest.strip() == f"stopped by {int(signum)}"
    wait_until(lambda: is_gone(child_pid))
