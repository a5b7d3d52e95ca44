from django.core.management.base import BaseCommand, CommandError

from messaging import errors
from messaging.client import WhatsAppClient
from messaging.models import WhatsAppNumber
from messaging.services import sync_from_meta


class Command(BaseCommand):
    help = (
        "Copy message templates (name, language, category, status, components) and the "
        "messaging limit, quality and throughput of WhatsApp numbers from the Graph API."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "phone_number_ids", nargs="*", help="Only these numbers (default: every number)."
        )

    def handle(self, *args, phone_number_ids, **options):
        numbers = WhatsAppNumber.objects.select_related("organization").order_by("pk")
        if phone_number_ids:
            numbers = numbers.filter(phone_number_id__in=phone_number_ids)
            missing = set(phone_number_ids) - {n.phone_number_id for n in numbers}
            if missing:
                raise CommandError(f"unknown phone_number_id: {', '.join(sorted(missing))}")
        client = WhatsAppClient()
        failures = 0
        for number in numbers:
            try:
                sync = sync_from_meta(number, client)
            except errors.WhatsAppError as error:
                failures += 1
                self.stderr.write(f"{number.phone_number_id}: Meta error {error.code}: {error}")
                continue
            self.stdout.write(
                f"{number.phone_number_id} ({number.organization}) {sync.summary()} "
                f"Counts: {dict(sync.templates.counts)}"
            )
        if failures:
            raise CommandError(f"{failures} number(s) could not be synced")
