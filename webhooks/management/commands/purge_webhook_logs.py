"""Delete old webhook logs: finished outbound deliveries (with their attempts) and the inbound
audience-filter events of sends that finished, both before a cutoff. Deletes in batches, each
its own short transaction, so a huge table is never locked for long."""

import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from campaigns.models import AudienceFilterEvent
from campaigns.selectors import sends_finished_before
from webhooks.models import WebhookAttempt, WebhookDelivery


def old_deliveries(cutoff):
    return WebhookDelivery.objects.filter(
        status__in=(WebhookDelivery.Status.SUCCEEDED, WebhookDelivery.Status.FAILED),
        finished_at__lt=cutoff,
    )


def old_filter_events(cutoff):
    return AudienceFilterEvent.objects.filter(send__in=sends_finished_before(cutoff))


class Command(BaseCommand):
    help = (
        "Delete outbound webhook deliveries and inbound audience-filter events older than N days."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than-days",
            type=int,
            default=settings.WEBHOOK_LOG_RETENTION_DAYS,
            help="keep what finished within this many days (default WEBHOOK_LOG_RETENTION_DAYS)",
        )
        parser.add_argument("--dry-run", action="store_true", help="only count what would go")
        parser.add_argument("--batch-size", type=int, default=1000, help="rows per transaction")

    def handle(self, *args, older_than_days, dry_run, batch_size, **options):
        if older_than_days < 0 or batch_size < 1:
            raise CommandError("--older-than-days must be ≥ 0 and --batch-size ≥ 1.")
        cutoff = timezone.now() - dt.timedelta(days=older_than_days)
        deliveries, events = old_deliveries(cutoff), old_filter_events(cutoff)
        if dry_run:
            attempts = WebhookAttempt.objects.filter(delivery__in=deliveries).count()
            self.stdout.write(
                f"Would delete {deliveries.count()} webhook deliveries ({attempts} attempts) and "
                f"{events.count()} audience-filter events finished before {_day(cutoff)}."
            )
            return
        deleted = {"deliveries": 0, "attempts": 0, "events": 0}
        while batch := list(deliveries.values_list("pk", flat=True)[:batch_size]):
            with transaction.atomic():
                deleted["attempts"] += WebhookAttempt.objects.filter(delivery__in=batch).delete()[0]
                deleted["deliveries"] += WebhookDelivery.objects.filter(pk__in=batch).delete()[0]
        while batch := list(events.values_list("pk", flat=True)[:batch_size]):
            deleted["events"] += AudienceFilterEvent.objects.filter(pk__in=batch).delete()[0]
        self.stdout.write(
            f"Deleted {deleted['deliveries']} webhook deliveries ({deleted['attempts']} attempts) "
            f"and {deleted['events']} audience-filter events finished before {_day(cutoff)}."
        )


def _day(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
