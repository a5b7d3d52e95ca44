"""Campaigns, their sends, and the per-recipient send queue.

State changes go through campaigns.services (the lifecycle state machine); models only hold data.
"""

import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from audiences.models import Audience, Lead
from messaging.models import Category, MessageTemplate, ProductPolicy, WhatsAppNumber
from setter.models import Organization
from setter.send_windows import SendWindowFields


def new_api_id() -> str:
    return str(uuid.uuid4())


class Campaign(SendWindowFields):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        PAUSED = "paused", "Paused"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        STOPPED = "stopped", "Stopped"
        CANCELLED = "cancelled", "Cancelled"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="campaigns"
    )
    api_id = models.CharField(
        "API id",
        max_length=100,
        default=new_api_id,
        help_text="The campaign's id in the REST API: chosen by the partner, or a generated UUID.",
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    whatsapp_number = models.ForeignKey(
        WhatsAppNumber, on_delete=models.PROTECT, related_name="campaigns"
    )
    audiences = models.ManyToManyField(Audience, related_name="campaigns", blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    status_reason = models.TextField(blank=True, help_text="Why the campaign last changed state.")
    product_policy_confirmed = models.BooleanField(
        "recipients opted in (product policy)",
        default=False,
        help_text="I confirm every recipient opted in to WhatsApp marketing messages from us, "
        "as Meta's marketing message policy requires.",
    )
    product_policy = models.CharField(
        "product policy",
        max_length=32,
        choices=ProductPolicy.choices,
        default=ProductPolicy.CLOUD_API_FALLBACK,
        help_text="Sent as product_policy on every MARKETING message of the campaign.",
    )
    stop_at = models.DateTimeField(
        null=True, blank=True, help_text="Stop sending after this instant."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # The status groups, defined here only. Sends of active campaigns fire; a live campaign
    # (active, or paused) still reads its audiences and must be stopped before it is deleted;
    # a finished campaign never sends again.
    ACTIVE_STATUSES = (Status.SCHEDULED, Status.RUNNING)
    LIVE_STATUSES = (Status.SCHEDULED, Status.PAUSED, Status.RUNNING)
    FINISHED_STATUSES = (Status.COMPLETED, Status.STOPPED, Status.CANCELLED)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "api_id"], name="unique_campaign_api_id"
            )
        ]

    def __str__(self):
        return self.name

    @property
    def is_editable(self) -> bool:
        return self.status == self.Status.DRAFT


class Send(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        MATERIALIZED = "materialized", "Materialized"
        SENDING = "sending", "Sending"
        COMPLETED = "completed", "Completed"
        MISSED = "missed", "Missed"
        STOPPED = "stopped", "Stopped"
        CANCELLED = "cancelled", "Cancelled"

    # The status groups, defined here only (campaigns.services holds the machine moving a send
    # between them). An unfired send has not started dispatching; a firing one has recipients
    # queued for now or is dispatching them; a finished one never dispatches again.
    UNFIRED_STATUSES = (Status.PENDING, Status.MATERIALIZED)
    FIRING_STATUSES = (Status.MATERIALIZED, Status.SENDING)
    UNFINISHED_STATUSES = (*UNFIRED_STATUSES, Status.SENDING)
    FINISHED_STATUSES = (Status.COMPLETED, Status.MISSED, Status.STOPPED, Status.CANCELLED)

    class AudienceFilterMode(models.TextChoices):
        OFF = "off", "Off (full audience)"
        WEBHOOK_FILTERED = "webhook_filtered", "Filtered by inbound webhook"

    class EventFilterMode(models.TextChoices):
        OFF = "off", "Off"
        INCLUDE = "include", "Include leads with the event"
        EXCLUDE = "exclude", "Exclude leads with the event"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="sends")
    position = models.PositiveIntegerField(default=0)
    name = models.CharField(max_length=200, blank=True)

    local_date = models.DateField()
    local_time = models.TimeField()
    time_zone = models.CharField(
        max_length=64, default="UTC", help_text="IANA zone, e.g. Europe/London"
    )
    scheduled_for = models.DateTimeField(
        editable=False, db_index=True, help_text="The UTC instant of the local time in its zone."
    )
    recipient_local_time = models.BooleanField(
        "at each recipient's local time",
        default=False,
        help_text="Deliver at this date and time in each recipient's own zone (the lead's "
        "time_zone, else its phone's), in waves, one per distinct instant: a send spans up to "
        "~26 hours. The time zone above is the fallback for phones whose zone is unknown or "
        "spans several zones (when it is one of them).",
    )
    start_offset_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        editable=False,
        help_text="Set for an API send without a schedule of its own: it fires this many minutes "
        "after the campaign is started, and its local time is filled in then.",
    )

    category = models.CharField(max_length=16, choices=Category.choices, default=Category.MARKETING)
    template = models.ForeignKey(MessageTemplate, on_delete=models.PROTECT, related_name="sends")
    parameter_mapping = models.JSONField(
        default=list,
        blank=True,
        help_text="One entry per template parameter (the body's {{n}}, then the text header's, "
        'then each URL button\'s): a lead field ("first_name"), a variable ("variables.coupon") '
        "or a literal in quotes.",
    )
    audience_filter_mode = models.CharField(
        max_length=20, choices=AudienceFilterMode.choices, default=AudienceFilterMode.OFF
    )
    event_filter_mode = models.CharField(
        max_length=8, choices=EventFilterMode.choices, default=EventFilterMode.OFF
    )
    event_filter_type = models.CharField(max_length=100, blank=True)
    event_filter_within_minutes = models.PositiveIntegerField(null=True, blank=True)
    max_messages_per_second = models.PositiveIntegerField(
        default=20, validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    status_reason = models.TextField(blank=True)
    recipient_count = models.PositiveIntegerField(default=0)
    materialized_at = models.DateTimeField(null=True, blank=True)
    # How long the recipient INSERT … SELECT took: materialized_at marks only its start.
    materialization_seconds = models.FloatField(null=True, blank=True, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    dispatch_heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The retention purge (campaigns.retention) deletes a finished send's recipient rows;
    # first it keeps here what the analytics and metrics read from them
    # (campaigns.analytics.recipient_rollup), and from then on they read this instead.
    recipients_purged_at = models.DateTimeField(null=True, blank=True, editable=False)
    recipient_rollup = models.JSONField(default=dict, blank=True, editable=False)
    # The template's body when the send fired: each recipient's message is this with the
    # parameters stored on its row, as sent, whatever the template says after a later sync.
    template_body = models.TextField(blank=True, editable=False)
    # Its components then (header, buttons), for the header and URL buttons of those messages.
    template_components = models.JSONField(default=list, blank=True, editable=False)

    class Meta:
        ordering = ["campaign", "scheduled_for", "position"]

    def __str__(self):
        return self.name or f"Send {self.position + 1} of {self.campaign}"


class AudienceFilterEvent(models.Model):
    """One inbound audience-filter payload for a send; the latest one counts."""

    class Mode(models.TextChoices):
        INCLUDE = "include", "Include"
        EXCLUDE = "exclude", "Exclude"

    send = models.ForeignKey(Send, on_delete=models.CASCADE, related_name="filter_events")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    mode = models.CharField(max_length=8, choices=Mode.choices)
    payload_hash = models.CharField(max_length=64)
    external_ids = models.JSONField(default=list)
    phones_e164 = models.JSONField(default=list)
    lead_count = models.PositiveIntegerField()
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["send", "payload_hash"], name="unique_filter_payload")
        ]

    def __str__(self):
        return f"{self.mode} {self.lead_count} leads for {self.send}"


class SendRecipient(models.Model):
    """One message of one send to one phone: the unit the dispatcher claims and Meta reports on."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        READ = "read", "Read"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"
        UNKNOWN = "unknown", "Unknown (worker lost mid-call)"
        CLAIMED = "claimed", "Claimed (held by a dispatcher, not yet on the wire)"

    class SkipReason(models.TextChoices):
        """Why a recipient was never messaged: shown per send, counted and exported."""

        OPTED_OUT = "opted_out", "Opted out before the send"
        CANCELLED = "cancelled", "Campaign cancelled"
        STOPPED = "stopped", "Campaign stopped"
        MISSING_PARAMETER = "missing_parameter", "A template parameter would be empty"
        FREQUENCY_CAP = "frequency_cap", "The organization's frequency cap was reached"
        OUTSIDE_WINDOW = "outside_window", "Outside the campaign's send window"
        # A send at each recipient's local time (issue 16.1, campaigns.waves).
        LOCAL_TIME_PASSED = "local_time_passed", "The recipient's local send time had passed"
        NO_LOCAL_WAVE = "no_local_wave", "The send had no wave for the recipient's zone"

    # Rows a dispatcher may still send, held or not: a stop skips them, a pause keeps them.
    UNSENT_STATUSES = (Status.QUEUED, Status.CLAIMED)
    # Rows not settled yet: their send is not finished while any is left.
    OPEN_STATUSES = (Status.QUEUED, Status.CLAIMED, Status.SENDING)
    # Rows whose request may have left: only Meta's answer or reports settle them.
    IN_FLIGHT_STATUSES = (Status.SENDING, Status.UNKNOWN)
    # Messages on the wire, whatever Meta said since: what the frequency cap and the quality
    # guard count as a message the phone got.
    MESSAGED_STATUSES = (Status.SENT, Status.DELIVERED, Status.READ, Status.UNKNOWN)

    # No database constraints on these two: checking them cost about half the time of a
    # million-row materialization (one trigger call per row). The materializer writes both
    # from the send it locked and that send's own leads, and rows leave only through the
    # ORM's cascade (a send deleted), its SET NULL or audiences' set-based delete (a lead
    # deleted) and the retention purge. `send` needs no index of its own: one_message_per_phone
    # leads with it.
    send = models.ForeignKey(
        Send,
        on_delete=models.CASCADE,
        related_name="recipients",
        db_constraint=False,
        db_index=False,
    )
    lead = models.ForeignKey(
        Lead, on_delete=models.SET_NULL, null=True, related_name="+", db_constraint=False
    )
    phone_e164 = models.CharField(max_length=20)
    limited_reporting = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    wamid = models.CharField(max_length=128, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=16, blank=True)
    error_title = models.CharField(max_length=255, blank=True)
    error_detail = models.TextField(blank=True)
    skip_reason = models.CharField(max_length=32, choices=SkipReason.choices, blank=True)
    # The wave that last queued the row: 1, the send itself; 2 and on, retries of its
    # failed recipients (SendWave). A database default: the materializer's INSERT names
    # its columns.
    wave = models.PositiveSmallIntegerField(default=1, db_default=1, editable=False)
    # The body parameters of the last attempt, written with its `sending` mark (None: never
    # on the wire). With the send's template_body they are the message the recipient got.
    parameters = models.JSONField(null=True, blank=True, editable=False)
    # The dispatcher holding a claimed or sending row renews this; past it, the row's holder
    # is presumed dead (claimed rows go back to the queue, sending ones become unknown).
    claim_token = models.CharField(max_length=32, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["send", "id"]
        constraints = [
            models.UniqueConstraint(fields=["send", "phone_e164"], name="one_message_per_phone")
        ]

    # Set here rather than in Meta, whose body cannot see the status groups above.
    # Every status change rewrites the row's entries in every index whose condition the new
    # row meets (status is indexed, so no status change is a HOT update): the partial indexes
    # hold only the rows their consumers look for, and a materialized row enters none of
    # them but recipient_open.
    Meta.indexes = [
        # The dispatcher's claim (send, queued, by id), lease renewal, a stop's or cancel's
        # skip_unsent, and the "anything left?" checks that settle a send.
        models.Index(
            fields=["send", "status", "id"],
            name="recipient_open",
            condition=models.Q(status__in=OPEN_STATUSES),
        ),
        # The engine tick's recovery of rows whose holder's lease expired.
        models.Index(
            fields=["lease_expires_at"],
            name="recipient_held",
            condition=models.Q(status__in=(Status.CLAIMED, Status.SENDING)),
        ),
        # Status webhooks find their row by wamid (equality only); rows not sent yet have
        # none and stay out of it (campaigns.feedback repeats the condition in its lookup).
        models.Index(fields=["wamid"], name="recipient_wamid", condition=~models.Q(wamid="")),
        # Failures by error code: the analytics' error table, the admin's error filter and
        # the failed-messages metric.
        models.Index(
            fields=["send", "error_code"],
            name="recipient_failed",
            condition=models.Q(status=Status.FAILED),
        ),
    ]

    def __str__(self):
        return f"{self.phone_e164} ({self.status})"


class SendWave(models.Model):
    """A part of a send that fires at an instant of its own; its recipients carry its number.

    A retry (issue 15.2) re-queues a completed send's failed recipients at a time the marketer
    picked (campaigns.retries); wave 1 of an ordinary send is the send itself and has no row.
    A local wave (issue 16.1) is the share of a send "at each recipient's local time" whose
    zones read that local time at the same instant (campaigns.local_time): the waves are
    fixed when the first fires, and each materializes just before its own instant."""

    class Kind(models.TextChoices):
        RETRY = "retry", "Retry"
        LOCAL = "local", "Local time"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        MATERIALIZED = "materialized", "Materialized"  # a local wave's rows wait for its time
        STARTED = "started", "Started"
        CANCELLED = "cancelled", "Cancelled"
        MISSED = "missed", "Missed"

    # Still to fire: a send is not finished while it has one.
    UNFIRED_STATUSES = (Status.PENDING, Status.MATERIALIZED)

    send = models.ForeignKey(Send, on_delete=models.CASCADE, related_name="waves")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.RETRY)
    number = models.PositiveSmallIntegerField()
    scheduled_for = models.DateTimeField()
    # A local wave: the recipients' zones it serves, those of them where the local time
    # does not exist that day (the wave is the next valid minute there), and how many
    # recipients it materialized, of which in those zones.
    zones = models.JSONField(default=list, blank=True)
    shifted_zones = models.JSONField(default=list, blank=True)
    recipients = models.PositiveIntegerField(default=0)
    shifted = models.PositiveIntegerField(default=0)
    materialization_seconds = models.FloatField(null=True, blank=True)
    # The recipient-permanent failure classes (messaging.errors.RetryClass) retried too.
    include = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    requested_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # At its start: the failed rows chosen, and of those the ones queued again (the rest
    # the send would no longer reach: opted out, left the audience, held by the cap).
    chosen = models.PositiveIntegerField(default=0)
    requeued = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["send", "number"]
        constraints = [
            models.UniqueConstraint(fields=["send", "number"], name="one_wave_number_per_send"),
            models.UniqueConstraint(
                fields=["send"],
                condition=models.Q(status="pending", kind="retry"),
                name="one_pending_retry_per_send",
            ),
        ]

    def __str__(self):
        if self.kind == self.Kind.LOCAL:
            return f"Wave {self.number} of send {self.send_id}"
        return f"Retry {self.number - 1} of send {self.send_id}"

    @property
    def not_requeued(self) -> int:
        return self.chosen - self.requeued


class TestPhone(models.Model):
    """A staff member's own phone that test sends may go to: at most MAX_PER_ORGANIZATION,
    so a test send can never become a way to message customers outside a campaign."""

    MAX_PER_ORGANIZATION = 10
    __test__ = False  # not a pytest test class

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="test_phones"
    )
    phone_e164 = models.CharField(
        "phone", max_length=20, help_text="In international format, e.g. +44 7911 123456."
    )
    label = models.CharField(max_length=100, blank=True, help_text="Whose phone it is.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization", "label", "phone_e164"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "phone_e164"], name="unique_test_phone")
        ]

    def __str__(self):
        return f"{self.label} ({self.phone_e164})" if self.label else self.phone_e164


class TestSend(models.Model):
    """One message of a send rendered for a lead and sent now to a test phone. Never a
    recipient: it counts in no analytics and is invisible to the send's queue."""

    Status = SendRecipient.Status
    __test__ = False  # not a pytest test class

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    send = models.ForeignKey(Send, on_delete=models.CASCADE, related_name="test_sends")
    lead = models.ForeignKey(Lead, on_delete=models.SET_NULL, null=True, related_name="+")
    phone_e164 = models.CharField(max_length=20)
    parameters = models.JSONField(default=list)
    body = models.TextField(blank=True, help_text="The template body as the lead would read it.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SENDING)
    wamid = models.CharField(max_length=128, blank=True, db_index=True)
    error_code = models.CharField(max_length=16, blank=True)
    error_title = models.CharField(max_length=255, blank=True)
    error_detail = models.TextField(blank=True)
    requested_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Test of {self.send} to {self.phone_e164} ({self.status})"
