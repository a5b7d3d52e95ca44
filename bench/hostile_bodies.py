"""Peak RSS of a gunicorn worker under hostile bodies (issue 12, point 1).

    .venv/bin/python bench/hostile_bodies.py [--rounds 20]

One gunicorn worker on PostgreSQL; each round posts a 700,000-lead audience filter (just
under 16 MiB) with a wrong HMAC signature, the same with an unknown API key, 400,000 lead
events without credentials, 60,000 persons (over the 10,000 limit) to POST /api/v1/segments
with a valid key and with an unknown one, and a body over the size limit. A thread samples the
worker's RSS every 20 ms. Uses BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/setter_bench). Prints one JSON object on its last line:
the worker's RSS after one warm-up round, its peak, and at the end. Target: the end within
64 MB of the warm-up figure.
"""

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import orjson
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import free_port, setup_django, start_gunicorn, stop  # noqa: E402

MB = 1024 * 1024


def rss_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def worker_pid(master: int) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise SystemExit("gunicorn started no worker")


class PeakSampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0, True

    def run(self):
        while self.running:
            self.peak = max(self.peak, rss_of(self.pid))
            time.sleep(0.02)


def hostile_requests():
    """(path, body, headers, expected status) of one round."""
    from campaigns.models import Campaign
    from messaging.models import WhatsAppNumber
    from setter.models import Organization
    from setter.services import create_api_key, create_signing_key, sign_body

    stamp = str(time.time_ns())
    signer = Organization.objects.create(
        name=f"Hostile {stamp}", slug=f"hostile-{stamp}", inbound_auth_mode="hmac"
    )
    create_signing_key(signer, "real")
    number = WhatsAppNumber.objects.create(
        organization=signer,
        display_phone_number="+1 555 0100",
        phone_number_id=f"hostile-{stamp}",
        waba_id="hostile",
        access_token="hostile",
    )
    campaign = Campaign.objects.create(organization=signer, name="hostile", whatsapp_number=number)
    _, api_key = create_api_key(signer, "bench")

    leads = [{"externalId": f"{n % 100_000:05d}"} for n in range(700_000)]
    big_filter = orjson.dumps(
        {"campaignId": campaign.pk, "sendId": 1, "mode": "include", "leads": leads}
    )
    people = [
        {"externalId": f"p{n}", "phone": f"+4420794{n % 100_000:05d}", "firstName": "Ana"}
        for n in range(60_000)
    ]
    persons = orjson.dumps({"name": "too many", "persons": people})
    events = orjson.dumps({"events": [{"phoneE164": "+15551234567"}] * 400_000})
    json_type = {"Content-Type": "application/json"}
    wrong_signature = "sha256=" + sign_body("whsec_guess", big_filter)
    return [
        ("/api/v1/webhooks/campaigns/audience-filter", big_filter,
         {**json_type, "X-Setter-Signature": wrong_signature}, 401),
        ("/api/v1/webhooks/campaigns/audience-filter", big_filter,
         {**json_type, "Authorization": "Bearer sk_guess"}, 401),
        ("/api/v1/webhooks/lead-events", events, json_type, 401),
        ("/api/v1/segments", persons, {**json_type, "x-api-key": api_key}, 400),
        ("/api/v1/segments", persons, {**json_type, "x-api-key": "sk_guess"}, 401),
        ("/api/v1/webhooks/campaigns/audience-filter", big_filter + b" " * (2 * MB), json_type,
         413),
    ]  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    setup_django()
    cases = hostile_requests()
    port = free_port()
    server = start_gunicorn(port, workers=1)
    try:
        pid = worker_pid(server.pid)
        base = f"http://127.0.0.1:{port}"
        with requests.Session() as session:

            def one_round():
                for path, body, headers, expected in cases:
                    answer = session.post(base + path, data=body, headers=headers, timeout=120)
                    if answer.status_code != expected:
                        raise SystemExit(f"{path}: {answer.status_code} {answer.text[:200]}")

            started = time.monotonic()
            one_round()
            warm = rss_of(pid)
            sampler = PeakSampler(pid)
            sampler.start()
            for _ in range(args.rounds):
                one_round()
            sampler.running = False
            sampler.join()
            final = rss_of(pid)
            elapsed = time.monotonic() - started
    finally:
        stop(server)
    result = {
        "rounds": args.rounds,
        "requests": len(cases) * (args.rounds + 1),
        "worker_rss_after_warmup_mb": round(warm / MB),
        "worker_peak_rss_mb": round(sampler.peak / MB),
        "worker_rss_at_end_mb": round(final / MB),
        "growth_mb": round((final - warm) / MB),
        "seconds": round(elapsed, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
