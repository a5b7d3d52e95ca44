"""Delete the recipient rows of sends finished more than N days ago (campaigns.retention);
each send's figures stay on it, so its campaign's pages and the metrics show them as before."""

import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from campaigns import retention
from campaigns.models import SendRecipient

PROGRESS_EVERY = 100_000  # rows of one send between progress lines


class Command(BaseCommand):
    help = "Delete the recipients of sends finished more than N days ago, keeping their figures."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than-days",
            type=int,
            default=settings.RECIPIENT_RETENTION_DAYS,
            help="keep the recipients of sends finished within this many days "
            "(default RECIPIENT_RETENTION_DAYS)",
        )
        parser.add_argument("--dry-run", action="store_true", help="only count what would go")
        parser.add_argument("--batch-size", type=int, default=5000, help="rows per transaction")

    def handle(self, *args, older_than_days, dry_run, batch_size, **options):
        if older_than_days < 0 or batch_size < 1:
            raise CommandError("--older-than-days must be ≥ 0 and --batch-size ≥ 1.")
        cutoff = timezone.now() - dt.timedelta(days=older_than_days)
        if dry_run:
            purgeable = retention.purgeable_sends(cutoff)
            recipients = SendRecipient.objects.filter(send__in=purgeable).count()
            self.stdout.write(
                f"Would delete {recipients} recipients of {purgeable.count()} sends finished "
                f"before {cutoff:%Y-%m-%d %H:%M} UTC."
            )
            return
        sends = recipients = 0
        for purged in retention.purge_recipients(
            cutoff, batch_size=batch_size, on_batch=self._progress
        ):
            sends += 1
            recipients += purged.recipients
            self.stdout.write(f"{_name(purged.send)}: {purged.recipients} recipients deleted.")
        self.stdout.write(
            f"Deleted {recipients} recipients of {sends} sends finished before "
            f"{cutoff:%Y-%m-%d %H:%M} UTC."
        )

    def _progress(self, send, deleted, batch):
        if deleted // PROGRESS_EVERY > (deleted - batch) // PROGRESS_EVERY:
            self.stdout.write(f"{_name(send)}: {deleted} recipients deleted so far…")


def _name(send) -> str:
    return f"Send {send.pk} ({send}, {send.get_status_display().lower()})"
