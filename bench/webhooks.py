"""Partner-webhook benchmark over HTTP, against a real gunicorn server on PostgreSQL.

    .venv/bin/python bench/webhooks.py [--rounds 5] [--workers 2]

Posts --rounds audience filters of 100,000 leads (half externalId, half phoneE164, a new
payload each round so each is accepted) and --rounds batches of 50,000 lead events (fresh
distinct phones each round), timing each request end to end. Targets: filter ≤ 1.0 s,
events ≤ 2.5 s (medians). Uses BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/setter_bench). Prints one JSON object on its last line.
"""

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import free_port, setup_django, start_gunicorn, timed  # noqa: E402

FILTER_LEADS = 100_000
EVENTS = 50_000


def build_send():
    """An organization with an API key and a webhook-filtered send a day out."""
    from django.utils import timezone

    from campaigns.models import Campaign, Send
    from messaging.models import Category, MessageTemplate, WhatsAppNumber
    from setter.models import Organization
    from setter.services import create_api_key

    stamp = str(time.time_ns())
    org = Organization.objects.create(name=f"Webhook bench {stamp}", slug=f"wh-bench-{stamp}")
    _, raw_key = create_api_key(org, "bench")
    number = WhatsAppNumber.objects.create(
        organization=org,
        display_phone_number="+1 555 0100",
        phone_number_id=f"wh-bench-{stamp}",
        waba_id="bench",
        access_token="bench",
        mm_lite_terms_accepted=True,
    )
    template = MessageTemplate.objects.create(
        organization=org,
        name="bench",
        category=Category.MARKETING,
        status=MessageTemplate.Status.APPROVED,
        body_text="Hi {{1}}",
    )
    campaign = Campaign.objects.create(
        organization=org, name="bench", whatsapp_number=number, product_policy_confirmed=True
    )
    fire_at = timezone.now() + dt.timedelta(days=1)
    send = Send.objects.create(
        campaign=campaign,
        local_date=fire_at.date(),
        local_time=fire_at.time(),
        scheduled_for=fire_at,
        template=template,
        audience_filter_mode=Send.AudienceFilterMode.WEBHOOK_FILTERED,
    )
    return raw_key, send


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    setup_django()
    import orjson
    import requests

    raw_key, send = build_send()
    port = free_port()
    server = start_gunicorn(port, args.workers)
    base = f"http://127.0.0.1:{port}/api/v1/webhooks"
    headers = {"Authorization": f"Bearer {raw_key}", "Content-Type": "application/json"}
    filter_seconds, event_seconds = [], []
    try:
        with requests.Session() as session:
            for round_ in range(args.rounds):
                leads = [
                    {"externalId": f"r{round_}-crm-{n:07d}"}
                    if n % 2
                    else {"phoneE164": f"+4479{round_}{n:07d}"}
                    for n in range(FILTER_LEADS)
                ]
                body = orjson.dumps(
                    {
                        "campaignId": send.campaign_id,
                        "sendId": send.pk,
                        "mode": "include",
                        "leads": leads,
                    }
                )
                seconds, answer = timed(
                    session, "POST", f"{base}/campaigns/audience-filter", body, headers
                )
                assert answer == {"status": "accepted", "leadCount": FILTER_LEADS}, answer
                filter_seconds.append(seconds)
                print(
                    f"filter {round_ + 1}: {len(body) / 1e6:.1f} MB in {seconds:.3f} s",
                    file=sys.stderr,
                )

            occurred_at = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
            for round_ in range(args.rounds):
                events = [
                    {
                        "phoneE164": f"+4478{round_}{n:07d}",
                        "eventType": "webinar_attended",
                        "occurredAt": occurred_at,
                    }
                    for n in range(EVENTS)
                ]
                body = orjson.dumps({"events": events})
                seconds, answer = timed(session, "POST", f"{base}/lead-events", body, headers)
                assert answer["accepted"] == EVENTS, {
                    k: answer[k] for k in ("accepted", "rejected")
                }
                event_seconds.append(seconds)
                print(
                    f"events {round_ + 1}: {len(body) / 1e6:.1f} MB in {seconds:.3f} s",
                    file=sys.stderr,
                )
    finally:
        server.terminate()
        server.wait(timeout=30)

    filter_median = statistics.median(filter_seconds)
    events_median = statistics.median(event_seconds)
    print(f"median filter of {FILTER_LEADS:,} leads: {filter_median:.3f} s", file=sys.stderr)
    print(f"median batch of {EVENTS:,} events: {events_median:.3f} s", file=sys.stderr)
    print(
        json.dumps(
            {
                "filter_100k_median_s": round(filter_median, 3),
                "events_50k_median_s": round(events_median, 3),
                "target_filter_s": 1.0,
                "target_events_s": 2.5,
                "filter_runs_s": [round(s, 3) for s in filter_seconds],
                "events_runs_s": [round(s, 3) for s in event_seconds],
                "gunicorn_workers": args.workers,
                "meets_targets": filter_median <= 1.0 and events_median <= 2.5,
            }
        )
    )


if __name__ == "__main__":
    main()
