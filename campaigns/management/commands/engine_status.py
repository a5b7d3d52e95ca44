"""Show the sends the engine is working on or will soon, with their recipients per status."""

import datetime as dt
import json

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db.models import Count
from django.utils import timezone

from campaigns.models import Send, SendRecipient


class Command(BaseCommand):
    help = "List sends due within --hours (and every send in progress) with recipient counts."

    def add_arguments(self, parser):
        parser.add_argument("--hours", type=float, default=24, help="look this far ahead")
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="one JSON object per send"
        )

    def handle(self, *args, hours, as_json, **options):
        horizon = timezone.now() + dt.timedelta(hours=hours)
        sends = list(
            Send.objects.filter(status__in=Send.UNFINISHED_STATUSES, scheduled_for__lte=horizon)
            .select_related("campaign")
            .order_by("scheduled_for", "pk")
        )
        counts: dict[int, dict] = {send.pk: {} for send in sends}
        rows = (
            SendRecipient.objects.filter(send__in=sends)
            .values("send_id", "status")
            .annotate(count=Count("id"))
            .order_by()
        )
        for row in rows:
            counts[row["send_id"]][row["status"]] = row["count"]
        for send in sends:
            self.stdout.write(self._line(send, counts[send.pk], as_json=as_json))
        if not sends and not as_json:
            self.stdout.write(f"No sends due in the next {hours:g} h.")

    def _line(self, send, recipients, *, as_json):
        entry = {
            "send_id": send.pk,
            "campaign_id": send.campaign_id,
            "campaign": send.campaign.name,
            "campaign_status": send.campaign.status,
            "status": send.status,
            "scheduled_for": send.scheduled_for.isoformat(),
            "dispatch_heartbeat_at": send.dispatch_heartbeat_at
            and send.dispatch_heartbeat_at.isoformat(),
            "recipients": recipients,
        }
        if as_json:
            return json.dumps(entry)
        counts = " ".join(f"{status}={count}" for status, count in sorted(recipients.items()))
        return (
            f"send {send.pk} ({send.campaign.name!r}, campaign {send.campaign.status}) "
            f"{send.status} at {entry['scheduled_for']}{self._heartbeat(send)}  "
            f"{counts or 'no recipients yet'}"
        )

    @staticmethod
    def _heartbeat(send) -> str:
        """How long ago a dispatcher last claimed a batch: stale ones are what
        redispatch_send is for."""
        if send.status != Send.Status.SENDING or send.dispatch_heartbeat_at is None:
            return ""
        age = (timezone.now() - send.dispatch_heartbeat_at).total_seconds()
        stale = " STALE: see redispatch_send" if age >= settings.DISPATCH_STALE_SECONDS else ""
        return f", dispatch heartbeat {age:.0f} s ago{stale}"
