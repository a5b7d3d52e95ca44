"""Send-engine benchmark on PostgreSQL.

    .venv/bin/python bench/engine.py [--leads 100000]

Materialization: an audience of --leads leads, 10% of them opted out, an include filter of
60% of them (half by externalId, half by phone) and an exclude event filter over 2x leads
events. Target: ≤ 1.5 s. Prints one JSON object on its last line.
"""

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import setup_django  # noqa: E402


def copy_rows(table, columns, rows):
    from django.db import connection

    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def build(leads: int):
    from django.utils import timezone

    from audiences.models import Audience, Lead, LeadEvent, OptOut
    from campaigns.models import AudienceFilterEvent, Campaign, Send
    from messaging.models import Category, MessageTemplate, WhatsAppNumber
    from setter.models import Organization

    stamp = str(time.time_ns())
    org = Organization.objects.create(name=f"Bench {stamp}", slug=f"bench-{stamp}")
    number = WhatsAppNumber.objects.create(
        organization=org,
        display_phone_number="+1 555 0100",
        phone_number_id=f"bench-{stamp}",
        waba_id="bench",
        access_token="bench",
        messaging_limit=WhatsAppNumber.MessagingLimit.TIER_UNLIMITED,
        mm_lite_terms_accepted=True,
    )
    template = MessageTemplate.objects.create(
        organization=org,
        name="bench",
        category=Category.MARKETING,
        status=MessageTemplate.Status.APPROVED,
        body_text="Hi {{1}}",
    )
    audience = Audience.objects.create(organization=org, name="bench", status="ready")
    campaign = Campaign.objects.create(
        organization=org,
        name="bench",
        whatsapp_number=number,
        status=Campaign.Status.SCHEDULED,
        product_policy_confirmed=True,
    )
    campaign.audiences.add(audience)
    fire_at = timezone.now() + dt.timedelta(seconds=30)
    send = Send.objects.create(
        campaign=campaign,
        local_date=fire_at.date(),
        local_time=fire_at.time(),
        time_zone="UTC",
        scheduled_for=fire_at,
        category=Category.MARKETING,
        template=template,
        audience_filter_mode=Send.AudienceFilterMode.WEBHOOK_FILTERED,
        event_filter_mode=Send.EventFilterMode.EXCLUDE,
        event_filter_type="purchase",
    )
    phones = [f"+4479{n:08d}" for n in range(leads)]
    copy_rows(
        Lead._meta.db_table,
        ["audience_id", "organization_id", "row_number", "external_id", "phone_raw",
         "phone_e164", "region", "first_name", "last_name", "email", "variables",
         "ingest_status", "reject_reason", "limited_reporting"],
        (
            (audience.pk, org.pk, i + 1, f"ext-{i}", phone, phone, "GB", "Ann", "", "", "{}",
             "ok", "", True)
            for i, phone in enumerate(phones)
        ),
    )  # fmt: skip
    copy_rows(
        OptOut._meta.db_table,
        ["organization_id", "phone_e164", "scope", "source", "note", "created_at"],
        ((org.pk, p, "all", "manual", "", fire_at) for p in phones[::10]),
    )
    event_at = fire_at - dt.timedelta(days=1)
    copy_rows(
        LeadEvent._meta.db_table,
        ["organization_id", "phone_e164", "event_type", "occurred_at", "received_at"],
        (
            (org.pk, f"+4479{n % (leads * 2):08d}", "purchase" if n % 7 == 0 else "viewed",
             event_at - dt.timedelta(seconds=n // (leads * 2)), fire_at)
            for n in range(leads * 2)
        ),
    )  # fmt: skip
    include = int(leads * 0.6)
    AudienceFilterEvent.objects.create(
        send=send,
        organization=org,
        mode="include",
        payload_hash="bench",
        external_ids=[f"ext-{i}" for i in range(0, include, 2)],
        phones_e164=[phones[i] for i in range(1, include, 2)],
        lead_count=include,
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return org, send


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    args = parser.parse_args()
    setup_django()

    from campaigns.materializer import materialize_send

    print(f"building {args.leads:,} leads, opt-outs, events and a filter…", file=sys.stderr)
    org, send = build(args.leads)
    started = time.perf_counter()
    result = materialize_send(send.pk)
    seconds = time.perf_counter() - started
    print(f"materialized {result.recipient_count:,} recipients in {seconds:.3f} s", file=sys.stderr)
    send.campaign.delete()
    org.delete()
    print(
        json.dumps(
            {
                "materialize_leads": args.leads,
                "materialize_recipients": result.recipient_count,
                "materialize_seconds": round(seconds, 3),
                "target_materialize_seconds": 1.5,
            }
        )
    )


if __name__ == "__main__":
    main()
