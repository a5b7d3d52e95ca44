"""Run a Python module on a test's virtual clock: `python -m tests.clocked FILE MODULE ARGS…`.

FILE holds "INSTANT REAL": the clock reads INSTANT (ISO) when the real Unix time is REAL,
and ticks at real speed from there. The test rewrites the file as it moves its own clock
(time-machine in both processes); a thread here follows within 20 ms. A send at each
recipient's local time spans a day: this lets a test run each of its waves with a real
worker in seconds. Monotonic time, which timeouts and rate limits use, stays real.
"""

import datetime as dt
import runpy
import sys
import threading
import time
from pathlib import Path

import time_machine


def real_time() -> float:
    """The real Unix time, travelling or not."""
    if time_machine.escape_hatch.is_travelling():
        return time_machine.escape_hatch.time.time()
    return time.time()


def read(path: Path) -> tuple[str, dt.datetime]:
    text = path.read_text()
    instant, real = text.split()
    return text, dt.datetime.fromisoformat(instant) + dt.timedelta(
        seconds=real_time() - float(real)
    )


def write(path: Path, instant: dt.datetime) -> None:
    """Set the clock of the processes following `path` to `instant` (now, in real time)."""
    staged = path.with_suffix(".new")
    staged.write_text(f"{instant.isoformat()} {real_time()}")
    staged.replace(path)  # atomic: a follower never reads half a line


def follow(path: Path, traveller, seen: str) -> None:
    while True:
        time.sleep(0.02)  # real: time-machine leaves sleeping alone
        text, now = read(path)
        if text != seen:
            traveller.move_to(now)
            seen = text


def main() -> None:
    path, module, *args = sys.argv[1:]
    seen, now = read(Path(path))
    traveller = time_machine.travel(now).start()
    threading.Thread(target=follow, args=(Path(path), traveller, seen), daemon=True).start()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
