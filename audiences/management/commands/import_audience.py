"""Scripted audience import: the admin upload's ingest, run here and now."""

import json
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from audiences import selectors, services
from audiences.models import Audience
from setter.models import Organization

BAR_WIDTH = 30


class Command(BaseCommand):
    help = (
        "Import a CSV as an audience of an organization, synchronously. Progress goes to "
        "stderr; the last line on stdout is one JSON object with the audience id, status, "
        "error and counts per ingest status."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="CSV file to import")
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--name", required=True, help="audience name")
        parser.add_argument("--default-region", default="", help="ISO region, e.g. BR")
        parser.add_argument("--phone-column", default="", help="header of the phone column")

    def handle(self, *args, **options):
        path = Path(options["path"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"No organization with slug {options['org']!r}.")
        with path.open("rb") as upload:
            try:
                audience = services.create_csv_audience(
                    organization=organization,
                    name=options["name"],
                    file=File(upload, name=path.name),
                    default_region=options["default_region"] or settings.AUDIENCE_DEFAULT_REGION,
                    phone_column=options["phone_column"],
                    enqueue=False,
                )
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from exc
        audience = services.ingest_audience(audience.pk, progress=self._show_progress)
        self.stderr.write("")
        self.stdout.write(
            json.dumps(
                {
                    "audience_id": audience.pk,
                    "status": audience.status,
                    "error": audience.error,
                    "total_rows": audience.total_rows,
                    "counts": selectors.audience_counts(audience),
                }
            )
        )
        if audience.status != Audience.Status.READY:
            raise CommandError(audience.error)

    def _show_progress(self, processed_bytes: int, total_bytes: int) -> None:
        share = processed_bytes / total_bytes if total_bytes else 1.0
        filled = round(share * BAR_WIDTH)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        self.stderr.write(
            f"\r[{bar}] {share:6.1%} {processed_bytes / 2**20:.1f}/{total_bytes / 2**20:.1f} MB",
            ending="",
        )
