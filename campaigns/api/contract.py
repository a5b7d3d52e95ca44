"""The bodies the campaign API takes, each declared once: the schema publishes these
serializers and the server validates each body with them (setter.api.contract); the limits
are here, where the schema states them. campaigns.api.parsing then resolves what a schema
cannot (templates, segments, leads, the sender) and the rules between fields."""

import re
from typing import Any

from django.core.validators import RegexValidator
from rest_framework import serializers

from campaigns.models import Send
from campaigns.rendering import parameter_problem, stored_parameter
from campaigns.services import EVENT_WINDOW_PROBLEM, MAX_EVENT_WINDOW_MINUTES
from messaging.errors import RetryClass
from messaging.models import Category, ProductPolicy
from setter.api.contract import (
    ApiIdField,
    IdField,
    InstantField,
    LocalDateField,
    QueryRequestSerializer,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
    StrictListField,
    StrictListSerializer,
    StrictSerializer,
    TextOrNumberField,
)
from setter.send_windows import WEEKDAYS, WindowOutside

from .querying import MAX_LIMIT

MAX_SEGMENTS = 25
MAX_LEADS = 1_000
MAX_SENDS = 20
MAX_NAME_LENGTH = 200
MAX_START_OFFSET_MINUTES = 366 * 24 * 60
# A wall-clock time as the schedule takes it and shows it: HH:MM or HH:MM:SS, no offset.
LOCAL_TIME_PATTERN = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9])?")
LOCAL_TIME_PROBLEM = "a wall-clock time HH:MM or HH:MM:SS"
START_OFFSET_PROBLEM = (
    f"a whole number of minutes from 0 to {MAX_START_OFFSET_MINUTES:,} (366 days)"
)
WINDOW_MINUTES_PROBLEM = "required: a whole number of minutes"


def _messages(message: str, *codes: str) -> dict[str, Any]:
    """The same message for each of the codes: one thing is wrong, however it was."""
    return dict.fromkeys(codes, message)


def _id_list(limit: int, **kwargs) -> StrictListField:
    """Segment or lead ids: a non-empty list, null being the same as absent."""
    return StrictListField(
        child=IdField(),
        required=False,
        allow_null=True,
        allow_empty=False,
        max_length=limit,
        error_messages={
            **_messages("expected a non-empty list of ids", "not_a_list", "empty"),
            "max_length": "at most {max_length:,} ids, got {length:,}",
        },
        **kwargs,
    )


class ParameterField(TextOrNumberField):
    """A template parameter: a literal (a number is its text) or a Django template over the
    lead, checked as the editor checks it (the variables it may name are checked once the
    campaign's audience is known)."""

    default_error_messages = _messages("expected a string", "invalid", "null")

    def to_internal_value(self, data):
        entry = stored_parameter(super().to_internal_value(data))
        if problem := parameter_problem(entry):
            raise serializers.ValidationError(problem)
        return entry


class ScheduleSerializer(StrictSerializer):
    """One of the three kinds (the first three keys); a local date goes with localTime and
    timeZone (default: the organization's zone, as a new send in the admin)."""

    scheduledFor = InstantField(required=False, help_text="An instant (UTC).")
    localDate = LocalDateField(required=False)
    startOffsetMinutes = StrictIntegerField(
        required=False,
        min_value=0,
        max_value=MAX_START_OFFSET_MINUTES,
        error_messages=_messages(START_OFFSET_PROBLEM, "invalid", "null", "min_value", "max_value"),
        help_text="Minutes after the campaign's start (the default, 0, when no schedule).",
    )
    localTime = StrictCharField(
        required=False,
        validators=[RegexValidator(f"^{LOCAL_TIME_PATTERN.pattern}$", LOCAL_TIME_PROBLEM)],
        error_messages=_messages(LOCAL_TIME_PROBLEM, "invalid", "null", "blank"),
        help_text="Wall-clock time HH:MM or HH:MM:SS in timeZone, without an offset.",
    )
    timeZone = StrictCharField(
        required=False,
        error_messages=_messages("an IANA zone such as Europe/London", "invalid", "null", "blank"),
        help_text="IANA zone, e.g. Europe/London. Default: the organization's default time zone "
        "(else its first number's country zone).",
    )
    recipientLocalTime = StrictBooleanField(
        required=False,
        help_text="With localDate and localTime: deliver at that wall time in each "
        "recipient's own zone (the lead's timeZone, else its phone's), in waves, one per "
        "distinct instant; timeZone is then the fallback for phones whose zone is unknown or "
        "spans several. Default false.",
    )


class WithinSerializer(StrictSerializer):
    minutes = StrictIntegerField(
        min_value=1,
        max_value=MAX_EVENT_WINDOW_MINUTES,
        error_messages={
            **_messages(WINDOW_MINUTES_PROBLEM, "required", "invalid", "null"),
            **_messages(EVENT_WINDOW_PROBLEM, "min_value", "max_value"),
        },
    )


class EventFilterSerializer(StrictSerializer):
    """Seed 001's event filter, as written there."""

    mode = StrictChoiceField(Send.EventFilterMode.values, required=False)
    eventType = StrictCharField(max_length=100, required=False, allow_null=True, allow_blank=True)
    within = WithinSerializer(
        required=False,
        allow_null=True,
        error_messages={"invalid": 'expected an object like {{"minutes": 120}}'},
        help_text="Only events whose occurredAt lies within this many minutes before the send "
        "fires; null or absent: any time.",
    )


class SendSerializer(StrictSerializer):
    name = StrictCharField(
        required=False, allow_null=True, allow_blank=True, max_length=MAX_NAME_LENGTH
    )
    template = StrictCharField(
        error_messages=_messages(
            "required: the name of one of your templates", "required", "null", "blank"
        ),
        help_text="Name of one of your templates.",
    )
    language = StrictCharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        error_messages={"invalid": "expected a language code such as en_US"},
        help_text="Needed when the template exists in several languages.",
    )
    category = StrictChoiceField(
        Category.values, required=False, allow_null=True, help_text="Defaults to the template's."
    )
    parameters = StrictListField(
        child=ParameterField(),
        required=False,
        error_messages=_messages("expected a list of strings", "not_a_list", "null"),
        help_text="One per {{n}} of the template: a literal, or a Django template over the "
        'lead such as {{ lead.first_name }} or {{ lead.variables.coupon|default:"WELCOME" }}.',
    )
    headerParameters = StrictListField(
        child=ParameterField(),
        required=False,
        error_messages=_messages("expected a list of strings", "not_a_list", "null"),
        help_text="One per {{n}} of the template's text header (Meta allows one), as parameters.",
    )
    buttonParameters = StrictListField(
        child=ParameterField(),
        required=False,
        error_messages=_messages("expected a list of strings", "not_a_list", "null"),
        help_text="One per {{n}} of the template's URL buttons, in the buttons' order (Meta "
        "allows one per URL button), as parameters: the end of the button's URL.",
    )
    schedule = ScheduleSerializer(
        required=False,
        allow_null=True,
        help_text="One of scheduledFor, localDate+localTime(+timeZone), startOffsetMinutes; "
        "omitted: the send fires when the campaign starts.",
    )
    maxMessagesPerSecond = StrictIntegerField(
        required=False,
        default=20,
        min_value=1,
        max_value=1000,
        error_messages=_messages(
            "an integer from 1 to 1000", "invalid", "null", "min_value", "max_value"
        ),
    )
    audienceFilter = StrictChoiceField(
        Send.AudienceFilterMode.values, required=False, default=Send.AudienceFilterMode.OFF
    )
    eventFilter = EventFilterSerializer(required=False, allow_null=True)


def _local_time(help_text: str):
    return StrictCharField(
        validators=[RegexValidator(f"^{LOCAL_TIME_PATTERN.pattern}$", LOCAL_TIME_PROBLEM)],
        help_text=help_text,
    )


class SendWindowSerializer(StrictSerializer):
    start = _local_time("Opens at this local time (each recipient's zone), e.g. 09:00.")
    end = _local_time("Closes at this local time, after start the same day, e.g. 20:00.")
    days = StrictListField(
        child=StrictChoiceField(list(WEEKDAYS)),
        required=False,
        allow_empty=False,
        max_length=7,
        help_text="Days it opens (default: every day).",
    )
    outside = StrictChoiceField(
        WindowOutside.values,
        required=False,
        help_text="wait (the default): recipients outside it wait for its next opening in their "
        "zone; skip: they are skipped with reason outside_window.",
    )


class SendWindowObjectSerializer(serializers.Serializer):
    start = serializers.CharField()
    end = serializers.CharField()
    days = serializers.ListField(child=serializers.CharField())
    outside = serializers.ChoiceField(WindowOutside.values)


class CampaignBodySerializer(StrictSerializer):
    """Create (senderId and sends required) and update (every key optional; id fixed)."""

    id = ApiIdField(
        required=False,
        allow_null=True,
        help_text="Your id for the campaign (else a UUID is generated).",
    )
    name = StrictCharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        trim_whitespace=True,
        max_length=MAX_NAME_LENGTH,
        help_text="Default: Campaign <id>.",
    )
    description = StrictCharField(required=False, allow_null=True, allow_blank=True)
    senderId = StrictCharField(
        error_messages=_messages(
            "required: the phone_number_id of one of your numbers",
            "required",
            "null",
            "blank",
            "invalid",
        ),
        help_text="phone_number_id of one of your WhatsApp numbers.",
    )
    segmentIds = _id_list(MAX_SEGMENTS, help_text=f"At most {MAX_SEGMENTS}.")
    userIds = _id_list(MAX_LEADS, help_text=f"Lead ids instead of segments, at most {MAX_LEADS:,}.")
    leadIds = _id_list(MAX_LEADS, help_text="Same as userIds.")
    productPolicyConfirmed = StrictBooleanField(required=False)
    productPolicy = StrictChoiceField(
        ProductPolicy.values,
        required=False,
        help_text="Sent as product_policy on every MARKETING message; CLOUD_API_FALLBACK if omitted.",
    )
    stopAt = InstantField(required=False, allow_null=True)
    sendWindow = SendWindowSerializer(
        required=False,
        allow_null=True,
        help_text="Quiet hours: the campaign's messages reach people only inside this window "
        "of their own local time; null (the default): the organization's window, if any.",
    )
    sends = StrictListSerializer(
        child=SendSerializer(),
        allow_empty=False,
        max_length=MAX_SENDS,
        error_messages={
            **_messages("expected a non-empty list of sends", "required", "null", "not_a_list"),
            "empty": "expected a non-empty list of sends",
            "max_length": "at most {max_length}, got {length}",
        },
        help_text=f"1 to {MAX_SENDS}.",
    )


class StartBodySerializer(StrictSerializer):
    scheduledFor = InstantField(required=False, allow_null=True, help_text="Default: now.")
    stopAt = InstantField(required=False, allow_null=True)


class DuplicateBodySerializer(StrictSerializer):
    id = ApiIdField(
        required=False,
        allow_null=True,
        help_text="The copy's id (default: a generated UUID).",
    )
    name = StrictCharField(
        required=False,
        allow_null=True,
        trim_whitespace=True,
        max_length=MAX_NAME_LENGTH,
        error_messages=_messages("may not be empty", "blank", "null"),
        help_text="Default: the original's name + ' (copy)'.",
    )


class QueryBodySerializer(QueryRequestSerializer):
    limit = StrictIntegerField(required=False, default=25, min_value=1, max_value=MAX_LIMIT)


class TestSendBodySerializer(StrictSerializer):
    phone = StrictCharField(
        error_messages=_messages(
            "required: one of your organization's test phones", "required", "null", "invalid"
        ),
        help_text="One of your organization's test phones (admin: Test phones), with its "
        "country code.",
    )
    leadId = IdField(
        required=False,
        help_text="Render the message as this lead would get it (default: the first lead the "
        "send would reach now).",
    )


class PreviewBodySerializer(StrictSerializer):
    leadId = IdField(
        error_messages=_messages(
            "required: the id of one of your leads", "required", "null", "invalid"
        ),
        help_text="One of your leads.",
    )


class RetryBodySerializer(StrictSerializer):
    at = InstantField(
        error_messages={"required": "required: when to retry", "null": "required: when to retry"},
        help_text="When to retry: an instant with its offset, now or later (before the "
        "campaign's stopAt).",
    )
    include = StrictListField(
        child=StrictChoiceField(
            RetryClass.INCLUDABLE,
            error_messages={"invalid_choice": RetryClass.NOT_INCLUDABLE},
        ),
        required=False,
        max_length=len(RetryClass.INCLUDABLE),
        error_messages={"not_a_list": "expected a list of failure class names"},
        help_text="Recipient-permanent failure classes to retry as well (default: none): "
        + "; ".join(f"{name}: {RetryClass.WARNINGS[name]}" for name in RetryClass.INCLUDABLE),
    )
