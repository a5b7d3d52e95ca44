"""Naive send designs against the same Meta sandbox as bench/engine.py's throughput case (issue 17).

    .venv/bin/python bench/baselines.py [--recipients 60000] [--latency-ms 0 --latency-ms 150]
                                        [--concurrency 400] [--task-recipients N]
                                        [--pool threads --pool prefork]
                                        [--only requests|aiohttp|celery]

At each --latency-ms, one sandbox process (`meta_sandbox`, no status webhooks), reset between
paths, and the same MM Lite template bodies the engine sends (engine.template_requests), one
per distinct phone:

* requests: a bare `requests` client, no database, no Celery: a ThreadPoolExecutor of
  --concurrency threads (default 400, the engine's two workers × DISPATCH_CONCURRENCY),
  each thread with its own Session, posting --recipients messages.
* aiohttp: engine.bare_client_rate, the same messages on one event loop, --concurrency in
  flight (its CPU includes building the bodies, a few ms per 10,000).
* celery: one Celery task per message (bench/naive_tasks.py, its own app on Redis db 12,
  not the product's), each POSTing with a module-level requests Session. Two real `celery
  worker` processes, once `--pool threads --concurrency 200` each, once `--pool prefork
  --concurrency 2` each (what `celery -A proj worker` starts on this 2-core machine: the
  default pool, one process per core, as a typical Django app runs it). --task-recipients
  messages (default 3,000 threads, 600 prefork: the rate is the figure), all enqueued by
  this process first (each task a Redis push, as a view or beat would make), then the
  workers, started and idle on another queue, are told to take the tasks' queue.

Figures, per path and latency (`{path}_{latency}ms_…`):
* messages_per_second: distinct phones the sandbox answered 200. For requests and aiohttp
  over the client's wall time, first request to last answer (bare_client_rate's definition);
  for celery over the sandbox's first to last arrival (the enqueuing is over by then; its
  time and CPU are `enqueue_seconds` and `enqueue_cpu_ms_per_message`).
* cpu_ms_per_message: the client's CPU (user + system) per message messaged: this process's
  time.process_time() around requests and aiohttp (every thread of it); for celery the
  worker processes and their pool children from /proc, from just before they take the
  queue to the last answer (start-up not counted), without this enqueuing process.

Progress on stderr; one JSON object on the last stdout line.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))
from _setup import bench_organization, setup_django  # noqa: E402
from engine import (  # noqa: E402
    DISPATCH_CONCURRENCY,
    Sandbox,
    bare_client_rate,
    log,
    received,
    template_requests,
)

# Distinct phones per path (the sandbox is reset between paths; this keeps a stray late
# request of one path from reading as another's duplicate).
PREFIXES = {"requests": "+4477", "aiohttp": "+4475", "celery_threads": "+4474"}
PREFIXES["celery_prefork"] = "+4473"
CELERY_WORKERS = 2
CELERY_CONCURRENCY = {"threads": DISPATCH_CONCURRENCY, "prefork": 2}
TASK_RECIPIENTS = {"threads": 3_000, "prefork": 600}


def phones(path: str, count: int) -> list[str]:
    return [f"{PREFIXES[path]}{n:08d}" for n in range(count)]


def reset(sandbox: Sandbox) -> None:
    """Forget the previous path's requests (numbers and templates stay)."""
    import requests

    requests.post(f"{sandbox.url}/_sandbox/reset", timeout=10).raise_for_status()
    sandbox.reload()


def figures(key: str, sandbox: Sandbox, seconds: float, cpu_seconds: float) -> dict:
    stats = sandbox.stats()
    got = received(sandbox.records())
    messaged = got["messaged"]
    return {
        f"{key}_messages_per_second": round(messaged / seconds, 1) if seconds else None,
        f"{key}_cpu_ms_per_message": round(1000 * cpu_seconds / max(1, messaged), 3),
        f"{key}_seconds": round(seconds, 2),
        f"{key}_messaged": messaged,
        f"{key}_requests": got["requests"],
        f"{key}_max_in_any_second": got["max_in_any_second"],
        f"{key}_duplicate_recipients": stats["duplicate_recipients"],
    }


# --- requests ----------------------------------------------------------------------------------


def bench_requests(sandbox, number, template, count, concurrency, latency_ms) -> dict:
    import requests

    url, headers, bodies = template_requests(
        sandbox.url, number, template, phones("requests", count)
    )
    pending = iter(bodies)
    lock = threading.Lock()

    def sender() -> int:
        answered = 0
        with requests.Session() as session:
            while True:
                with lock:
                    body = next(pending, None)
                if body is None:
                    return answered
                response = session.post(url, data=body, headers=headers, timeout=60)
                answered += response.status_code == 200

    cpu = time.process_time()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        answered = sum(f.result() for f in [pool.submit(sender) for _ in range(concurrency)])
    seconds = time.monotonic() - started
    cpu = time.process_time() - cpu
    key = f"requests_{int(latency_ms)}ms"
    result = figures(key, sandbox, seconds, cpu)
    log(
        f"latency {latency_ms:.0f} ms: requests, {concurrency} threads: {answered:,} answered 200 "
        f"in {seconds:.1f} s ({result[f'{key}_messages_per_second']:,.0f}/s), "
        f"{result[f'{key}_cpu_ms_per_message']:.3f} ms CPU per message"
    )
    return result


# --- aiohttp -----------------------------------------------------------------------------------


def bench_aiohttp(sandbox, number, template, count, concurrency, latency_ms) -> dict:
    cpu = time.process_time()
    started = time.monotonic()
    rate = bare_client_rate(sandbox.url, number, template, phones("aiohttp", count), concurrency)
    seconds = time.monotonic() - started
    cpu = time.process_time() - cpu
    key = f"aiohttp_{int(latency_ms)}ms"
    result = figures(key, sandbox, seconds, cpu)
    # bare_client_rate's own figure: its 200s over its sending time (bodies built before).
    result[f"{key}_messages_per_second"] = round(rate, 1)
    log(
        f"latency {latency_ms:.0f} ms: aiohttp, {concurrency} in flight: {rate:,.0f}/s, "
        f"{result[f'{key}_cpu_ms_per_message']:.3f} ms CPU per message"
    )
    return result


# --- celery task per message -------------------------------------------------------------------


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU of a process and its living descendants (threads included), plus
    what their reaped children used (cutime + cstime), from /proc."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        stats[int(entry.name)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    ticks, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            ticks += sum(int(stats[pid][i]) for i in (11, 12, 13, 14))
        todo += children.get(pid, [])
    return ticks / os.sysconf("SC_CLK_TCK")


class NaiveWorkers:
    """`celery -A naive_tasks worker` processes, each in a process group of its own. They
    start on an idle queue and take the tasks' queue on `consume()`, so the tasks can be
    enqueued first: the rate is then the workers', not this process's enqueuing."""

    def __init__(self, pool: str, count: int, concurrency: int):
        import naive_tasks

        self.app = naive_tasks.app
        self.logs = []
        self.processes: list[subprocess.Popen] = []
        # Without DJANGO_SETTINGS_MODULE, or Celery's Django fix-up would set Django up.
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        env |= {
            "PYTHONPATH": str(BENCH),
            "NAIVE_POOL_MAXSIZE": str(concurrency),
        }
        self.hostnames = hostnames = [f"naive-{pool}-{i}-{os.getpid()}@bench" for i in range(count)]
        for hostname in hostnames:
            stderr = tempfile.TemporaryFile()
            self.logs.append(stderr)
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "naive_tasks", "worker",
                     "--pool", pool, "--concurrency", str(concurrency), "--loglevel", "WARNING",
                     "--hostname", hostname, "--queues", f"{naive_tasks.QUEUE}-idle"],
                    cwd=BENCH, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                    start_new_session=True,
                )
            )  # fmt: skip
        deadline = time.monotonic() + 60
        waiting = set(hostnames)
        while waiting:
            for reply in self.app.control.ping(destination=sorted(waiting), timeout=0.5):
                waiting -= set(reply)
            if waiting and (
                time.monotonic() > deadline or any(p.poll() is not None for p in self.processes)
            ):
                text = self.log()
                self.stop()
                raise SystemExit(f"celery workers {sorted(waiting)} did not start:\n{text}")

    def consume(self, queue: str) -> None:
        replies = self.app.control.add_consumer(
            queue, destination=self.hostnames, reply=True, timeout=5
        )
        if len(replies) != len(self.hostnames):
            raise SystemExit(f"add_consumer: only {replies} answered")

    def log(self) -> str:
        text = []
        for stderr in self.logs:
            stderr.seek(0)
            text.append(stderr.read().decode(errors="replace")[-2000:])
        return "\n".join(text)

    def cpu_seconds(self) -> float:
        return sum(tree_cpu_seconds(p.pid) for p in self.processes)

    def stop(self) -> None:
        """SIGTERM each worker's process group (the pool's children with it), SIGKILL what
        is still there after 15 s."""
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(process.pid, signal.SIGKILL)  # children left of a finished parent
            except ProcessLookupError:
                pass
            process.wait(timeout=10)
        for stderr in self.logs:
            stderr.close()


def bench_celery(sandbox, number, template, pool, count, latency_ms) -> dict:
    import naive_tasks

    path = f"celery_{pool}"
    url, headers, bodies = template_requests(sandbox.url, number, template, phones(path, count))
    texts = [body.decode() for body in bodies]
    concurrency = CELERY_CONCURRENCY[pool]
    purged = naive_tasks.app.control.purge()
    if purged:
        log(f"{path}: purged {purged} tasks of an earlier run")
    workers = NaiveWorkers(pool, CELERY_WORKERS, concurrency)
    try:
        enqueue_cpu = time.process_time()
        started = time.monotonic()
        with naive_tasks.app.producer_or_acquire() as producer:
            for text in texts:
                naive_tasks.send_message.apply_async((url, headers, text), producer=producer)
        enqueue_seconds = time.monotonic() - started
        enqueue_cpu = time.process_time() - enqueue_cpu
        log(
            f"latency {latency_ms:.0f} ms: {path}, {CELERY_WORKERS} × {concurrency}: {count:,} "
            f"tasks enqueued in {enqueue_seconds:.1f} s; the workers take them"
        )
        cpu = workers.cpu_seconds()
        workers.consume(naive_tasks.QUEUE)
        deadline = time.monotonic() + max(300, count / 2)
        while sandbox.stats()["requests"] < count:
            if time.monotonic() > deadline:
                log(f"{path}: not all {count:,} answered by the deadline; reporting what was")
                break
            time.sleep(0.25)
        cpu = workers.cpu_seconds() - cpu
    finally:
        naive_tasks.app.control.purge()
        workers.stop()
    got = received(sandbox.records())
    seconds = got["last_at"] - got["first_at"]
    key = f"{path}_{int(latency_ms)}ms"
    result = figures(key, sandbox, seconds, cpu)
    result[f"{key}_enqueue_seconds"] = round(enqueue_seconds, 2)
    result[f"{key}_enqueue_cpu_ms_per_message"] = round(1000 * enqueue_cpu / max(1, count), 3)
    log(
        f"latency {latency_ms:.0f} ms: {path}: {got['messaged']:,} messaged in {seconds:.1f} s "
        f"({result[f'{key}_messages_per_second'] or 0:,.0f}/s), enqueued in "
        f"{enqueue_seconds:.1f} s, {result[f'{key}_cpu_ms_per_message']:.3f} ms worker CPU per "
        f"message"
    )
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=60_000)
    parser.add_argument(
        "--latency-ms",
        type=int,
        action="append",
        help="the sandbox's answer latencies (default 0 and 150)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=2 * DISPATCH_CONCURRENCY,
        help="requests in flight of the requests and aiohttp clients (default: the engine's "
        "two workers × DISPATCH_CONCURRENCY)",
    )
    parser.add_argument(
        "--task-recipients",
        type=int,
        help="messages of each celery case (default 3,000 threads, 600 prefork)",
    )
    parser.add_argument(
        "--pool",
        choices=["threads", "prefork"],
        action="append",
        help="celery pools to measure (default both)",
    )
    parser.add_argument("--only", choices=["requests", "aiohttp", "celery"])
    args = parser.parse_args()
    setup_django()

    from messaging.models import WhatsAppNumber

    # Made before the sandbox starts: it loads numbers and templates from the database, and
    # a reset returns to what it loaded.
    org, number, template = bench_organization(
        "baselines",
        messaging_limit=WhatsAppNumber.MessagingLimit.TIER_UNLIMITED,
        throughput_mps=100_000,
    )
    results: dict = {"concurrency": args.concurrency}
    try:
        for latency in args.latency_ms or [0, 150]:
            sandbox = Sandbox(latency)
            try:
                if args.only in (None, "requests"):
                    reset(sandbox)
                    results |= bench_requests(
                        sandbox, number, template, args.recipients, args.concurrency, latency
                    )
                if args.only in (None, "aiohttp"):
                    reset(sandbox)
                    results |= bench_aiohttp(
                        sandbox, number, template, args.recipients, args.concurrency, latency
                    )
                if args.only in (None, "celery"):
                    for pool in args.pool or ["threads", "prefork"]:
                        reset(sandbox)
                        count = args.task_recipients or TASK_RECIPIENTS[pool]
                        results |= bench_celery(sandbox, number, template, pool, count, latency)
            finally:
                sandbox.stop()
    finally:
        org.delete()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
