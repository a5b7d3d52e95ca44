"""Give a stuck send dispatchers again, by the engine's own recovery rules.

Beat does this by itself every tick for sends whose dispatch heartbeat went stale; this
command is for an operator who found one it did not pick up (beat down, or a send that
`engine_status` shows stuck). It never resends: recipients lost in `sending` become
`unknown`, as in the engine's recovery, and only `queued` ones are handed to the workers.
"""

import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from campaigns import sends
from campaigns.models import Campaign, Send, SendRecipient
from campaigns.tasks import dispatch_send_task


class Command(BaseCommand):
    help = (
        "Re-dispatch a send stuck in `sending`: recipients lost in `sending` become `unknown` "
        "(never resent), then dispatch tasks are queued for the rest."
    )

    def add_arguments(self, parser):
        parser.add_argument("send_id", type=int)
        parser.add_argument(
            "--force",
            action="store_true",
            help="re-dispatch even if the send's dispatch heartbeat is fresh (a dispatcher may "
            "still be running; the extra one only claims what is still queued)",
        )

    def handle(self, *args, send_id, force, **options):
        now = timezone.now()
        send = Send.objects.select_related("campaign").filter(pk=send_id).first()
        if send is None:
            raise CommandError(f"There is no send {send_id}.")
        if send.status != Send.Status.SENDING:
            raise CommandError(
                f"Send {send_id} is {send.status}, not sending: only a sending send can be "
                "re-dispatched."
            )
        if send.campaign.status not in Campaign.ACTIVE_STATUSES:
            raise CommandError(
                f"Send {send_id}'s campaign is {send.campaign.status}: resume the campaign "
                "instead, beat then re-dispatches its sends."
            )
        self._check_heartbeat(send, now, force)

        lost = sends.recover_lost_recipients(now, send_id=send_id)
        self.stdout.write(
            f"Send {send_id}: {lost} recipient(s) whose dispatcher's lease lapsed while "
            "sending marked unknown (never resent)."
        )
        if sends.stalled_send_ids(now, send_id=send_id, stale_seconds=0 if force else None):
            for _ in range(settings.DISPATCH_TASKS_PER_SEND):
                dispatch_send_task.delay(send_id)
            queued = send.recipients.filter(status=SendRecipient.Status.QUEUED).count()
            self.stdout.write(
                self.style.SUCCESS(
                    f"Send {send_id}: queued {settings.DISPATCH_TASKS_PER_SEND} dispatch task(s) "
                    f"for its {queued} queued recipient(s)."
                )
            )
            return
        self._nothing_to_dispatch(send_id, now)

    def _check_heartbeat(self, send: Send, now: dt.datetime, force: bool) -> None:
        beat = send.dispatch_heartbeat_at
        age = (now - beat).total_seconds() if beat else None
        stale_after = settings.DISPATCH_STALE_SECONDS
        if age is None or age >= stale_after:
            return
        message = (
            f"Send {send.pk}'s dispatch heartbeat is {age:.0f} s old (stale after "
            f"{stale_after} s): a dispatcher is probably still working on it."
        )
        if not force:
            raise CommandError(f"{message} Use --force to re-dispatch it anyway.")
        self.stderr.write(self.style.WARNING(f"{message} Re-dispatching anyway (--force)."))

    def _nothing_to_dispatch(self, send_id: int, now: dt.datetime) -> None:
        """Nothing queued (or beat claimed it meanwhile): settle the send as beat would."""
        status = sends.settle_send(send_id, now=now)
        if status != Send.Status.SENDING:
            self.stdout.write(f"Send {send_id}: nothing left to dispatch; it is now {status}.")
            return
        recipients = SendRecipient.objects.filter(send_id=send_id)
        queued = recipients.filter(status=SendRecipient.Status.QUEUED).count()
        if queued:
            raise CommandError(
                f"Send {send_id}: a dispatcher took it up meanwhile (its heartbeat was just "
                f"renewed); {queued} recipient(s) still queued. Check again with engine_status."
            )
        held = recipients.filter(
            status__in=(SendRecipient.Status.CLAIMED, SendRecipient.Status.SENDING)
        ).count()
        raise CommandError(
            f"Send {send_id}: nothing queued, {held} recipient(s) held by a dispatcher whose "
            f"lease ({settings.DISPATCH_LEASE_SECONDS:g} s) has not lapsed. If it died, beat's "
            "recovery queues the claimed ones again and marks the sending ones unknown once the "
            "lease lapses, unless Meta's answer comes first; the send then completes."
        )
