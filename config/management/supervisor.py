"""A small process supervisor: runs several commands as one unit, as `runstack` needs.

A child that dies is started again after a backoff (the stack stays up for days, and a send due
while the worker restarts still fires); only a signal, or a child dying over and over (a crash
loop no restart will fix), stops the whole stack. Each child runs in a process group of its own (same session), so a terminal's Ctrl-C reaches
only the supervisor, which then stops every child and everything the child started. Output is
multiplexed in one thread with a selector: no reader threads, no interleaved half-lines.
"""

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TextIO


class ChildExited(Exception):
    """A child crash-looped: it died too often in too short a time to be worth restarting."""

    def __init__(self, name: str, returncode: int, deaths: int, window: float):
        super().__init__(
            f"{name} died {deaths} times within {window:g} s (last exit code {returncode})"
        )
        self.name = name
        self.returncode = returncode


class NotReady(Exception):
    """The readiness check did not pass before its deadline."""


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    log: TextIO | None = None
    pending: bytes = b""
    reaped: bool = False
    restarts: int = 0
    deaths: deque = field(default_factory=deque)
    restart_at: float | None = None

    @property
    def started(self) -> subprocess.Popen[bytes]:
        """The child's process: every caller runs after the first `_spawn`."""
        assert self.process is not None, f"{self.name} was never started"
        return self.process

    @property
    def output(self) -> IO[bytes]:
        """The read end of the child's stdout pipe (spawned with `stdout=PIPE`)."""
        assert self.started.stdout is not None
        return self.started.stdout


class Supervisor:
    def __init__(
        self,
        children: list[Child],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | str | None = None,
        out: TextIO | None = sys.stdout,
        log_dir: Path | None = None,
        stop_timeout: float = 15.0,
        crash_loop_deaths: int = 5,
        crash_loop_window: float = 60.0,
        restart_backoff: float = 0.5,
        restart_backoff_max: float = 8.0,
        state_file: Path | None = None,
    ):
        self.children = children
        self.env = env
        self.cwd = cwd
        self.out = out
        self.log_dir = log_dir
        self.stop_timeout = stop_timeout
        self.crash_loop_deaths = crash_loop_deaths
        self.crash_loop_window = crash_loop_window
        self.restart_backoff = restart_backoff
        self.restart_backoff_max = restart_backoff_max
        self.state_file = state_file
        self.stop_signal: int | None = None
        self._stopping = False
        self._hurry = False
        self._selector = selectors.DefaultSelector()
        self._label_width = max(len(child.name) for child in children)

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        for child in self.children:
            if self.log_dir is not None:
                child.log = open(self.log_dir / f"{child.name}.log", "a", encoding="utf-8")
            self._spawn(child)
        self._write_state()

    def _spawn(self, child: Child) -> None:
        child.process = subprocess.Popen(
            child.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            process_group=0,
        )
        child.reaped = False
        child.restart_at = None
        os.set_blocking(child.output.fileno(), False)
        self._selector.register(child.output, selectors.EVENT_READ, child)

    def run(
        self,
        *,
        ready: Callable[[], bool] | None = None,
        on_ready: Callable[[], None] | None = None,
        ready_timeout: float = 120.0,
    ) -> int | None:
        """Start the children and supervise them until SIGINT/SIGTERM/SIGHUP or a crash loop.

        A child that dies is restarted after a backoff that doubles with each recent death.
        `on_ready` runs once, as soon as `ready` passes (at once without a check). Returns the
        signal that stopped the stack. Raises ChildExited when a child crash-looped and
        NotReady when `ready` never passed; the other children are stopped either way.
        """
        previous = {
            signum: signal.signal(signum, self._request_stop)
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        }
        try:
            self.start()
            is_ready = False
            deadline = time.monotonic() + ready_timeout
            while self.stop_signal is None:
                self.pump(0.5)
                self.restart_dead_children()
                if not is_ready and self.stop_signal is None:
                    is_ready = ready is None or ready()
                    if is_ready and on_ready is not None:
                        on_ready()
                    elif not is_ready and time.monotonic() > deadline:
                        raise NotReady(f"the stack did not become ready in {ready_timeout:.0f} s")
            return self.stop_signal
        finally:
            self.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def stop(self) -> None:
        """SIGTERM every child's process group, wait, then SIGKILL whatever is left.

        A second Ctrl-C while stopping skips the wait (a repeated SIGTERM does not: `make`
        forwards the one its process group got).
        """
        self._stopping = True
        for child in self._running():
            _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while self._running() and not self._hurry and time.monotonic() < deadline:
            self.pump(0.2)
            self.first_exited()
        for child in self._running():
            self._emit(child, f"did not stop within {self.stop_timeout:g} s: killed")
            _signal_group(child, signal.SIGKILL)
            self._reap(child)
        self._drain(deadline=time.monotonic() + 2)

    # --- children --------------------------------------------------------------------------

    def restart_dead_children(self) -> None:
        """Schedule a restart for each child that died, and start those whose backoff is over.

        Raises ChildExited for a child that died `crash_loop_deaths` times within
        `crash_loop_window` seconds.
        """
        now = time.monotonic()
        for child in self.children:
            if child.process is None or child.restart_at is not None:
                continue
            if not child.reaped and not _has_exited(child.process):
                continue
            self._reap(child)
            self._drain_child(child)
            returncode = child.process.returncode
            child.deaths.append(now)
            while child.deaths and child.deaths[0] < now - self.crash_loop_window:
                child.deaths.popleft()
            if len(child.deaths) >= self.crash_loop_deaths:
                self._emit(child, f"exited with code {returncode}; crash loop, stopping the stack")
                raise ChildExited(child.name, returncode, len(child.deaths), self.crash_loop_window)
            delay = min(
                self.restart_backoff * 2 ** (len(child.deaths) - 1), self.restart_backoff_max
            )
            child.restart_at = now + delay
            self._emit(
                child,
                f"exited with code {returncode}; restarting in {delay:g} s "
                f"(restart {child.restarts + 1})",
            )
        for child in self.children:
            if child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                self._spawn(child)
                self._emit(child, f"restarted (pid {child.started.pid})")
                self._say(
                    "Restarts so far: "
                    + ", ".join(f"{name} {count}" for name, count in self.restart_counts().items())
                )
                self._write_state()

    def restart_counts(self) -> dict[str, int]:
        return {child.name: child.restarts for child in self.children}

    def _write_state(self) -> None:
        """Publish pids and restart counts for /readyz and tests (written whole, renamed in)."""
        if self.state_file is None:
            return
        temporary = self.state_file.with_name(self.state_file.name + ".tmp")
        temporary.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "children": {
                        child.name: child.process.pid
                        for child in self.children
                        if child.process is not None
                    },
                    "restarts": self.restart_counts(),
                }
            ),
            encoding="utf-8",
        )
        os.replace(temporary, self.state_file)

    def first_exited(self) -> Child | None:
        """Reap every child that has exited and return the first one (None if all run)."""
        first = None
        for child in self.children:
            if child.process is None or child.reaped:
                continue
            if _has_exited(child.process):
                self._reap(child)
                first = first or child
        return first

    def _running(self) -> list[Child]:
        return [c for c in self.children if c.process is not None and not c.reaped]

    def _drain_child(self, child: Child) -> None:
        """Copy a dead child's last output, then close its pipe (the log stays open)."""
        deadline = time.monotonic() + 1
        while child.output in self._registered() and time.monotonic() < deadline:
            self.pump(0.1)
        self._flush_pending(child)
        self._unregister(child)

    def _registered(self) -> list:
        return [key.fileobj for key in self._selector.get_map().values()]

    def _reap(self, child: Child) -> None:
        """Kill what is left of the child's process group, then collect the child's status.

        Until it is collected the child holds its pid, so the group id cannot have been reused.
        """
        if child.reaped:
            return
        _signal_group(child, signal.SIGKILL)
        child.started.wait()
        child.reaped = True

    def _request_stop(self, signum, frame) -> None:
        if self._stopping and signum == signal.SIGINT:
            self._hurry = True
        self.stop_signal = self.stop_signal or signum

    # --- output ----------------------------------------------------------------------------

    def pump(self, timeout: float) -> None:
        """Copy whatever the children printed within `timeout` to the console and logs."""
        if not self._selector.get_map():
            time.sleep(timeout)
            return
        for key, _ in self._selector.select(timeout):
            child = key.data
            try:
                chunk = os.read(key.fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                self._flush_pending(child)
                self._unregister(child)
                continue
            *lines, child.pending = (child.pending + chunk).split(b"\n")
            for line in lines:
                self._emit(child, line.decode("utf-8", "replace").rstrip("\r"))

    def _drain(self, deadline: float) -> None:
        """Read the children's last words, then close their pipes and logs."""
        while self._selector.get_map() and time.monotonic() < deadline:
            self.pump(0.1)
        for child in self.children:
            if child.process is not None:
                self._flush_pending(child)
                self._unregister(child)
            if child.log is not None:
                child.log.close()
                child.log = None

    def _say(self, line: str) -> None:
        if self.out is None:
            return
        try:
            self.out.write(line + "\n")
            self.out.flush()
        except OSError:  # the terminal went away: keep supervising, log to files only
            self.out = None

    def _flush_pending(self, child: Child) -> None:
        if child.pending:
            self._emit(child, child.pending.decode("utf-8", "replace"))
            child.pending = b""

    def _unregister(self, child: Child) -> None:
        try:
            self._selector.unregister(child.output)
        except (KeyError, ValueError):
            return
        child.output.close()

    def _emit(self, child: Child, line: str) -> None:
        self._say(f"{child.name:<{self._label_width}} | {line}")
        if child.log is not None:
            child.log.write(line + "\n")
            child.log.flush()


def _has_exited(process: subprocess.Popen) -> bool:
    """Whether the process exited, without reaping it (WNOWAIT keeps its pid reserved)."""
    if process.returncode is not None:
        return True
    try:
        status = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return status is not None


def _signal_group(child: Child, signum: int) -> None:
    try:
        os.killpg(child.started.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass
