"""Meta sandbox throughput: can it answer ≥ 1,000 sends/s with 150 ms latency?

    .venv/bin/python bench/sandbox.py [--requests 20000] [--concurrency 200] [--latency-ms 150]
                                      [--no-webhooks]

Starts `manage.py meta_sandbox` as its own process (as the product runs it), registers a
number and a MARKETING template, then keeps --concurrency template sends in flight over
keep-alive connections (aiohttp) until --requests are answered. Status webhooks (sent,
delivered, read) go to a receiver in this process unless --no-webhooks. Prints one JSON
object on its last line.
"""

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import ROOT, setup_django  # noqa: E402

NUMBER = {
    "phone_number_id": "bench-sandbox-1",
    "waba_id": "bench-waba-1",
    "access_token": "bench-token",
    "display_phone_number": "+1 555 0100",
    "messaging_limit_tier": "TIER_UNLIMITED",
}
TEMPLATE = {
    "waba_id": NUMBER["waba_id"],
    "name": "bench_promo",
    "language": "en_US",
    "category": "MARKETING",
    "body_text": "Hi {{1}}, {{2}} off today",
}


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux), to see the sandbox's cost per request."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sandbox(port: int, latency_ms: float, webhook_url: str) -> subprocess.Popen:
    command = [
        sys.executable,
        str(ROOT / "manage.py"),
        "meta_sandbox",
        "--port",
        str(port),
        "--latency-ms",
        str(latency_ms),
        "--webhook-url",
        webhook_url,
    ]
    return subprocess.Popen(command, cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL)


async def wait_for(url: str, session: aiohttp.ClientSession, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"sandbox did not answer {url}")
        await asyncio.sleep(0.1)


async def start_receiver(port: int) -> tuple[web.AppRunner, dict]:
    received = {"posts": 0, "statuses": 0}

    async def receive(request):
        payload = json.loads(await request.read())
        received["posts"] += 1
        for entry in payload["entry"]:
            for change in entry["changes"]:
                received["statuses"] += len(change["value"].get("statuses", []))
        return web.Response()

    app = web.Application()
    app.router.add_post("/webhooks/whatsapp", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, received


async def run(args) -> dict:
    port, receiver_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    webhook_url = "" if args.no_webhooks else f"http://127.0.0.1:{receiver_port}/webhooks/whatsapp"
    receiver, received = await start_receiver(receiver_port)
    process = start_sandbox(port, args.latency_ms, webhook_url)
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            await wait_for(f"{base}/_sandbox/stats", session)
            for path, data in (("numbers", NUMBER), ("templates", TEMPLATE)):
                async with session.post(f"{base}/_sandbox/{path}", json=data) as response:
                    response.raise_for_status()
            url = f"{base}/v21.0/{NUMBER['phone_number_id']}/marketing_messages"
            headers = {"Authorization": f"Bearer {NUMBER['access_token']}"}
            latencies: list[float] = []
            failures = 0
            counter = iter(range(args.requests))

            async def sender():
                nonlocal failures
                for n in counter:
                    body = {
                        "messaging_product": "whatsapp",
                        "recipient_type": "individual",
                        "to": f"4479{n:08d}",
                        "type": "template",
                        "template": {
                            "name": TEMPLATE["name"],
                            "language": {"code": "en_US"},
                            "components": [
                                {
                                    "type": "body",
                                    "parameters": [
                                        {"type": "text", "text": "Ada"},
                                        {"type": "text", "text": "20%"},
                                    ],
                                }
                            ],
                        },
                        "biz_opaque_callback_data": str(n),
                    }
                    started = time.monotonic()
                    async with session.post(url, json=body, headers=headers) as response:
                        await response.read()
                        failures += response.status != 200
                    latencies.append(time.monotonic() - started)

            cpu_before = cpu_seconds(process.pid)
            started = time.monotonic()
            await asyncio.gather(*(sender() for _ in range(args.concurrency)))
            elapsed = time.monotonic() - started
            if webhook_url:
                deadline = time.monotonic() + 30
                while received["statuses"] < 3 * args.requests and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
            async with session.get(f"{base}/_sandbox/stats") as response:
                stats = await response.json()
            sandbox_cpu = cpu_seconds(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)
        await receiver.cleanup()
    latencies.sort()
    cpu_ms = (
        (sandbox_cpu - cpu_before) * 1000 / args.requests
        if sandbox_cpu is not None and cpu_before is not None
        else None
    )
    return {
        "benchmark": "sandbox",
        "requests": args.requests,
        "concurrency": args.concurrency,
        "latency_ms": args.latency_ms,
        "seconds": round(elapsed, 3),
        "requests_per_second": round(args.requests / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        "failures": failures,
        "sandbox_accepted": stats["accepted"],
        "sandbox_cpu_ms_per_request": round(cpu_ms, 3) if cpu_ms else None,
        # What one core of sandbox could answer, whatever else loads the machine.
        "sandbox_capacity_per_core_rps": round(1000 / cpu_ms) if cpu_ms else None,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "webhook_statuses_received": received["statuses"],
        "webhook_posts": received["posts"],
        "target_requests_per_second": 1000,
        "ok": failures == 0 and args.requests / elapsed >= 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--no-webhooks", action="store_true")
    args = parser.parse_args()
    setup_django()  # the command reads its numbers from a migrated database
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
