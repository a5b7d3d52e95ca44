"""The bodies the campaign API takes, each declared once: the schema publishes these
serializers and campaigns.api.parsing and the views read each object by their keys
(setter.api.contract). Their limits are here, where the schema states them."""

import re

from rest_framework import serializers

from campaigns.services import MAX_EVENT_WINDOW_MINUTES
from messaging.errors import RetryClass
from messaging.models import ProductPolicy
from setter.api.contract import (
    IdField,
    QueryRequestSerializer,
    StrictCharField,
    StrictIntegerField,
    TextOrNumberField,
)

from .querying import MAX_LIMIT

MAX_SEGMENTS = 25
MAX_LEADS = 1_000
MAX_SENDS = 20
MAX_NAME_LENGTH = 200
MAX_START_OFFSET_MINUTES = 366 * 24 * 60
# A wall-clock time as the schedule takes it and shows it: HH:MM or HH:MM:SS, no offset.
LOCAL_TIME_PATTERN = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9])?")


class ScheduleSerializer(serializers.Serializer):
    """One of the three kinds (the first three keys); a local date goes with localTime and
    timeZone (default: the organization's zone, as a new send in the admin)."""

    scheduledFor = serializers.DateTimeField(required=False, help_text="An instant (UTC).")
    localDate = serializers.DateField(required=False)
    startOffsetMinutes = StrictIntegerField(
        required=False,
        min_value=0,
        max_value=MAX_START_OFFSET_MINUTES,
        help_text="Minutes after the campaign's start (the default, 0, when no schedule).",
    )
    localTime = serializers.RegexField(
        f"^{LOCAL_TIME_PATTERN.pattern}$",
        required=False,
        help_text="Wall-clock time HH:MM or HH:MM:SS in timeZone, without an offset.",
    )
    timeZone = StrictCharField(
        required=False,
        help_text="IANA zone, e.g. Europe/London. Default: the organization's default time zone "
        "(else its first number's country zone).",
    )


class WithinSerializer(serializers.Serializer):
    minutes = StrictIntegerField(min_value=1, max_value=MAX_EVENT_WINDOW_MINUTES)


class EventFilterSerializer(serializers.Serializer):
    """Seed 001's event filter, as written there."""

    mode = serializers.ChoiceField(["off", "include", "exclude"], required=False)
    eventType = StrictCharField(max_length=100, required=False)
    within = WithinSerializer(
        required=False,
        allow_null=True,
        help_text="Only events whose occurredAt lies within this many minutes before the send "
        "fires; null or absent: any time.",
    )


class SendSerializer(serializers.Serializer):
    name = StrictCharField(required=False, max_length=MAX_NAME_LENGTH)
    template = StrictCharField(help_text="Name of one of your templates.")
    language = StrictCharField(
        required=False, help_text="Needed when the template exists in several languages."
    )
    category = serializers.ChoiceField(
        ["MARKETING", "UTILITY"], required=False, help_text="Defaults to the template's."
    )
    parameters = serializers.ListField(
        child=TextOrNumberField(),
        required=False,
        help_text="One per {{n}} of the template: a literal, or a Django template over the "
        'lead such as {{ lead.first_name }} or {{ lead.variables.coupon|default:"WELCOME" }}.',
    )
    headerParameters = serializers.ListField(
        child=TextOrNumberField(),
        required=False,
        help_text="One per {{n}} of the template's text header (Meta allows one), as parameters.",
    )
    buttonParameters = serializers.ListField(
        child=TextOrNumberField(),
        required=False,
        help_text="One per {{n}} of the template's URL buttons, in the buttons' order (Meta "
        "allows one per URL button), as parameters: the end of the button's URL.",
    )
    schedule = ScheduleSerializer(
        required=False,
        help_text="One of scheduledFor, localDate+localTime(+timeZone), startOffsetMinutes; "
        "omitted: the send fires when the campaign starts.",
    )
    maxMessagesPerSecond = StrictIntegerField(
        required=False, default=20, min_value=1, max_value=1000
    )
    audienceFilter = serializers.ChoiceField(["off", "webhook_filtered"], required=False)
    eventFilter = EventFilterSerializer(required=False, allow_null=True)


class CampaignBodySerializer(serializers.Serializer):
    """Create (senderId and sends required) and update (every key optional; id fixed)."""

    id = StrictCharField(
        required=False, help_text="Your id for the campaign (else a UUID is generated)."
    )
    name = StrictCharField(
        required=False, max_length=MAX_NAME_LENGTH, help_text="Default: Campaign <id>."
    )
    description = StrictCharField(required=False)
    senderId = StrictCharField(help_text="phone_number_id of one of your WhatsApp numbers.")
    segmentIds = serializers.ListField(
        child=IdField(), required=False, help_text=f"At most {MAX_SEGMENTS}."
    )
    userIds = serializers.ListField(
        child=IdField(),
        required=False,
        help_text=f"Lead ids instead of segments, at most {MAX_LEADS:,}.",
    )
    leadIds = serializers.ListField(child=IdField(), required=False, help_text="Same as userIds.")
    productPolicyConfirmed = serializers.BooleanField(required=False)
    productPolicy = serializers.ChoiceField(
        ProductPolicy.values,
        required=False,
        help_text="Sent as product_policy on every MARKETING message; CLOUD_API_FALLBACK if omitted.",
    )
    stopAt = serializers.DateTimeField(required=False)
    sends = SendSerializer(many=True, help_text=f"1 to {MAX_SENDS}.")


class StartBodySerializer(serializers.Serializer):
    scheduledFor = serializers.DateTimeField(required=False, help_text="Default: now.")
    stopAt = serializers.DateTimeField(required=False)


class DuplicateBodySerializer(serializers.Serializer):
    id = StrictCharField(required=False, help_text="The copy's id (default: a generated UUID).")
    name = StrictCharField(
        required=False,
        max_length=MAX_NAME_LENGTH,
        help_text="Default: the original's name + ' (copy)'.",
    )


class QueryBodySerializer(QueryRequestSerializer):
    limit = StrictIntegerField(required=False, default=25, min_value=1, max_value=MAX_LIMIT)


class TestSendBodySerializer(serializers.Serializer):
    phone = StrictCharField(
        help_text="One of your organization's test phones (admin: Test phones), with its "
        "country code."
    )
    leadId = IdField(
        required=False,
        help_text="Render the message as this lead would get it (default: the first lead the "
        "send would reach now).",
    )


class PreviewBodySerializer(serializers.Serializer):
    leadId = IdField(help_text="One of your leads.")


class RetryBodySerializer(serializers.Serializer):
    at = serializers.DateTimeField(
        help_text="When to retry: an instant with its offset, now or later (before the "
        "campaign's stopAt)."
    )
    include = serializers.ListField(
        child=serializers.ChoiceField(RetryClass.INCLUDABLE),
        required=False,
        max_length=len(RetryClass.INCLUDABLE),
        help_text="Recipient-permanent failure classes to retry as well (default: none): "
        + "; ".join(f"{name}: {RetryClass.WARNINGS[name]}" for name in RetryClass.INCLUDABLE),
    )
