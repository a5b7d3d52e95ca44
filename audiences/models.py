"""Audiences (who can be messaged) and the per-phone facts that narrow them: opt-outs, events."""

from django.db import models
from django.db.models import F
from django.db.models.functions import Now

from setter.models import Organization

from .time_zones import zone_key


class Audience(models.Model):
    """A set of leads a campaign can target; the REST API calls it a segment.

    Its members are the leads it owns (CSV rows, or persons of the create-segment API) plus
    the leads added to it as targets (SegmentTarget) — or, for a dynamic one, every lead of
    the organization its filter matches (all of them with all_leads), evaluated when a send
    materializes. audiences.segments holds the rules.
    """

    class Source(models.TextChoices):
        CSV = "csv", "CSV upload"
        API = "api", "Segment API persons"
        TARGETS = "targets", "Explicit targets"
        DYNAMIC = "dynamic", "Dynamic filter"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to ingest"
        INGESTING = "ingesting", "Ingesting"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="audiences"
    )
    api_id = models.CharField(
        "API id",
        max_length=100,
        blank=True,
        help_text="The id a partner chose for the segment in the REST API; without one the "
        "segment's id there is its number.",
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.CSV)
    filter = models.JSONField(
        null=True, blank=True, help_text="Dynamic segments: the API filter over the leads."
    )
    all_leads = models.BooleanField(
        default=False, help_text="Dynamic segments: every lead of the organization."
    )
    size = models.PositiveIntegerField(
        default=0,
        help_text="Members: kept in place as targets change; for dynamic segments counted by a "
        "task after each change and when a send materializes.",
    )
    hidden = models.BooleanField(
        default=False, help_text="A campaign's own explicit leads: not listed as a segment."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True, help_text="Why the ingest failed, for the marketer.")

    file = models.FileField(upload_to="audiences/%Y/%m/", blank=True)
    phone_column = models.CharField(
        max_length=100, blank=True, help_text="Header of the phone column; detected when blank."
    )
    default_region = models.CharField(
        max_length=2,
        default="US",
        help_text="ISO country used for numbers written without a +country code.",
    )

    total_bytes = models.BigIntegerField(default=0)
    processed_bytes = models.BigIntegerField(default=0)
    total_rows = models.PositiveIntegerField(default=0)
    count_ok = models.PositiveIntegerField(default=0)
    count_invalid_phone = models.PositiveIntegerField(default=0)
    count_duplicate = models.PositiveIntegerField(default=0)
    count_ineligible_geo = models.PositiveIntegerField(default=0)
    count_invalid_time_zone = models.PositiveIntegerField(default=0)
    count_limited_reporting = models.PositiveIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ingest_started_at = models.DateTimeField(null=True, blank=True)
    ingest_finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "api_id"],
                condition=~models.Q(api_id=""),
                name="audience_api_id_unique_per_organization",
            )
        ]

    def __str__(self):
        return self.name

    @property
    def progress(self) -> float:
        """Share of the file read so far, 0–1."""
        if self.status == self.Status.READY:
            return 1.0
        if not self.total_bytes:
            return 0.0
        return min(1.0, self.processed_bytes / self.total_bytes)


class Lead(models.Model):
    class IngestStatus(models.TextChoices):
        OK = "ok", "OK"
        INVALID_PHONE = "invalid_phone", "Invalid phone"
        DUPLICATE = "duplicate", "Duplicate phone in this audience"
        INELIGIBLE_GEO = "ineligible_geo", "Ineligible region for marketing (US, Meta error 131049)"
        INVALID_TIME_ZONE = "invalid_time_zone", "Invalid time zone"

    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="leads")
    # Denormalised so organization-wide reads (segments, filters) need no join.
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    row_number = models.PositiveIntegerField(help_text="1-based data row in the source file.")
    external_id = models.CharField(max_length=255, blank=True, db_index=True)
    phone_raw = models.CharField(max_length=64, blank=True)
    phone_e164 = models.CharField(max_length=20, blank=True)
    region = models.CharField(max_length=2, blank=True)
    first_name = models.CharField(max_length=200, blank=True)
    last_name = models.CharField(max_length=200, blank=True)
    email = models.CharField(max_length=254, blank=True)
    variables = models.JSONField(default=dict, blank=True)
    ingest_status = models.CharField(max_length=20, choices=IngestStatus.choices)
    reject_reason = models.CharField(max_length=255, blank=True)
    limited_reporting = models.BooleanField(
        default=False, help_text="EEA/UK/JP/KR: Meta reports no read receipts for these."
    )
    # Issue 16.1: where the lead reads a send "at 10:00 in each recipient's zone"
    # (audiences.time_zones.lead_time_zone decides from these three). Database defaults, so
    # a COPY or raw insert that does not name them stores a lead read by its send's zone.
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        db_default="",
        help_text="The lead's IANA zone from the CSV's or API's time_zone; empty: its phone's.",
    )
    phone_zone = models.CharField(
        max_length=64,
        blank=True,
        db_default="",
        help_text="The phone's zone by libphonenumber: its area's, else its country's main one.",
    )
    phone_zones = models.TextField(
        blank=True,
        db_default="",
        help_text="When the phone's area spans several zones: all of them, space-separated.",
    )
    # A database default, so the ingest's COPY need not name it.
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["audience", "row_number"]
        indexes = [
            models.Index(fields=["audience", "phone_e164"], name="lead_audience_phone"),
            models.Index(fields=["audience", "ingest_status"], name="lead_audience_status"),
            models.Index(fields=["organization", "phone_e164"], name="lead_org_phone"),
            # A wave of a send at each recipient's local time reads its zones' leads
            # (campaigns.eligibility, audiences.time_zones.in_zones).
            models.Index(F("audience"), zone_key(), name="lead_audience_zone"),
        ]

    def __str__(self):
        return self.phone_e164 or self.phone_raw


class SegmentTarget(models.Model):
    """A lead added to a segment by id (the API's addTargets); the lead may belong to any
    audience of the same organization."""

    # The unique constraint's index serves lookups by audience.
    audience = models.ForeignKey(
        Audience, on_delete=models.CASCADE, related_name="targets", db_index=False
    )
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="segment_targets")
    added_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["audience", "lead"], name="unique_segment_target")
        ]

    def __str__(self):
        return f"{self.lead_id} in {self.audience_id}"


class OptOut(models.Model):
    """A phone that asked this organization to stop. Never shared across organizations."""

    class Scope(models.TextChoices):
        ALL = "all", "All messages"
        MARKETING = "marketing", "Marketing messages"

    class Source(models.TextChoices):
        KEYWORD = "keyword", "STOP-style reply"
        META_PREFERENCE = "meta_preference", "Meta marketing preference"
        META_ERROR = "meta_error", "Meta error 131050"
        MANUAL = "manual", "Added by staff"
        API = "api", "API"

    # No index of its own: unique_opt_out leads with the organization and serves its lookups.
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="opt_outs", db_index=False
    )
    phone_e164 = models.CharField(max_length=20)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.ALL)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "opt-out"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "phone_e164", "scope"], name="unique_opt_out"
            )
        ]

    def __str__(self):
        return f"{self.phone_e164} ({self.get_scope_display()})"


class LeadEvent(models.Model):
    """Something a phone did (a purchase, attending a webinar); sends filter on these."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="lead_events"
    )
    phone_e164 = models.CharField(max_length=20)
    event_type = models.CharField(max_length=100)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "phone_e164", "event_type", "occurred_at"],
                name="unique_lead_event",
            )
        ]
        indexes = [
            models.Index(
                fields=["organization", "event_type", "phone_e164", "occurred_at"],
                name="lead_event_lookup",
            )
        ]

    def __str__(self):
        return f"{self.event_type} {self.phone_e164} @ {self.occurred_at:%Y-%m-%d %H:%M}"
