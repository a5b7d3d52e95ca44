"""The bodies the segment API takes, each declared once: the schema publishes these
serializers and the server validates each body with them (setter.api.contract);
audiences.api.parsing reads the validated data.

Seed 002's create body (its broadcastMediumId, segmentType, TagId and filters are accepted and
ignored), seed 003's type, filter and allUsers, the PATCH body and the target lists.
"""

from typing import Any

from rest_framework import serializers

from audiences.ingest_rows import MAX_LENGTHS
from audiences.segments import MAX_TARGETS_PER_CALL
from setter.api.contract import (
    ApiIdField,
    FreeObjectField,
    IdField,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictListField,
    StrictListSerializer,
    StrictSerializer,
    TextOrNumberField,
)
from setter.models import validate_time_zone

MAX_SEGMENT_PERSONS = 10_000
MAX_NAME_LENGTH = 200
# A name is what is left once stripped, and a segment always has one.
NAME_MESSAGES = {"blank": "required", "null": "required"}
FILTER_MESSAGES = {
    "invalid": "expected a non-empty object (or allUsers: true for every lead)",
    "empty": "expected a non-empty object (or allUsers: true for every lead)",
}


def _person_text(limit: int, **kwargs) -> StrictCharField:
    """A person's text field: null or absent is empty, the rest stripped (a lead's columns)."""
    return StrictCharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        trim_whitespace=True,
        max_length=limit,
        **kwargs,
    )


class SubstitutionTagSerializer(StrictSerializer):
    tag = StrictCharField(
        trim_whitespace=True,
        error_messages={"blank": "required"},
        help_text="Template variable name, e.g. coupon.",
    )
    value = TextOrNumberField(
        required=False,
        allow_null=True,
        help_text="Its value for this person (a number is its text; null is empty).",
    )


class PersonSerializer(StrictSerializer):
    externalId = _person_text(MAX_LENGTHS["external_id"], help_text="Your id of the person.")
    firstName = _person_text(MAX_LENGTHS["name"])
    lastName = _person_text(MAX_LENGTHS["name"])
    phone = _person_text(
        MAX_LENGTHS["phone_raw"],
        help_text="WhatsApp number, ideally +E.164; without a country code it is read as US. "
        "phone or phoneNumber is required.",
    )
    phoneNumber = _person_text(MAX_LENGTHS["phone_raw"], help_text="Same as phone.")
    email = _person_text(MAX_LENGTHS["email"])
    timeZone = _person_text(
        64,
        validators=[validate_time_zone],
        help_text="The person's IANA zone, e.g. Europe/London: a send at each recipient's "
        "local time reaches them at its hour there. Without one, the phone's zone.",
    )
    substitutionTags = SubstitutionTagSerializer(
        many=True,
        required=False,
        allow_null=True,
        error_messages={"not_a_list": "expected a list of {{tag, value}} objects"},
        help_text="Become the lead's template variables {tag: value}.",
    )

    def validate(self, attrs):
        """Seed 002 spells the phone two ways; one of them is the lead."""
        if not (attrs.get("phone") or attrs.get("phoneNumber")):
            raise serializers.ValidationError({"phone": "required (phone or phoneNumber)"})
        return attrs


class CreateSegmentSerializer(StrictSerializer):
    id = ApiIdField(
        numeric_allowed=False,
        required=False,
        allow_null=True,
        help_text="Seed 003: your id for the segment (not only digits; 409 when taken); "
        "without one the segment's id is its number.",
    )
    name = StrictCharField(
        max_length=MAX_NAME_LENGTH, trim_whitespace=True, error_messages=NAME_MESSAGES
    )
    description = StrictCharField(required=False, allow_null=True, allow_blank=True)
    broadcastMediumId = StrictCharField(
        required=False, allow_blank=True, help_text="Accepted and ignored."
    )
    segmentType = StrictCharField(
        required=False, allow_blank=True, help_text="Accepted and ignored."
    )
    TagId = StrictCharField(required=False, allow_blank=True, help_text="Accepted and ignored.")
    filters = StrictListField(required=False, help_text="Accepted and ignored.")
    persons = StrictListSerializer(
        child=PersonSerializer(),
        required=False,
        allow_null=True,
        max_length=MAX_SEGMENT_PERSONS,
        error_messages={
            "not_a_list": "expected a list of person objects",
            "max_length": "at most {max_length:,} per call, got {length:,}",
        },
        help_text=f"Up to {MAX_SEGMENT_PERSONS:,} persons.",
    )
    type = StrictChoiceField(
        ["user"],
        required=False,
        allow_null=True,
        error_messages={"invalid_choice": "expected user (the only kind of segment)"},
        help_text="Seed 003: user (the only kind; channel is a 400).",
    )
    filter = FreeObjectField(
        required=False,
        allow_null=True,
        allow_empty=False,
        error_messages=FILTER_MESSAGES,
        help_text="Seed 003: a dynamic segment of the leads this filter matches (see Querying "
        "in docs/api.md); not with persons or allUsers.",
    )
    allUsers = StrictBooleanField(
        required=False, allow_null=True, help_text="Seed 003: a dynamic segment of every lead."
    )
    all_users = StrictBooleanField(required=False, allow_null=True, help_text="Same as allUsers.")


class SegmentChangesSerializer(StrictSerializer):
    name = StrictCharField(
        required=False,
        max_length=MAX_NAME_LENGTH,
        trim_whitespace=True,
        error_messages={"blank": "may not be empty", "null": "may not be empty"},
    )
    description = StrictCharField(required=False, allow_null=True, allow_blank=True)
    filter = FreeObjectField(
        required=False,
        allow_null=True,
        allow_empty=False,
        error_messages=FILTER_MESSAGES,
        help_text="Dynamic segments only; replaces allUsers.",
    )
    allUsers = StrictBooleanField(
        required=False, allow_null=True, help_text="Dynamic segments only; replaces the filter."
    )
    all_users = StrictBooleanField(required=False, allow_null=True, help_text="Same as allUsers.")


TARGET_IDS_MESSAGES: dict[str, Any] = {
    "required": "expected a list of target ids",
    "null": "expected a list of target ids",
    "not_a_list": "expected a list of target ids",
    "max_length": "at most {max_length:,} per call, got {length:,}",
}


class TargetIdsSerializer(StrictSerializer):
    targetIds = StrictListField(
        child=IdField(numeric=True),
        required=False,
        max_length=MAX_TARGETS_PER_CALL,
        error_messages=TARGET_IDS_MESSAGES,
        help_text=f"Lead ids (persons[].id of create segment), at most {MAX_TARGETS_PER_CALL:,}.",
    )
    target_ids = StrictListField(
        child=IdField(numeric=True),
        required=False,
        max_length=MAX_TARGETS_PER_CALL,
        error_messages=TARGET_IDS_MESSAGES,
        help_text="Same as targetIds.",
    )

    def validate(self, attrs):
        """One of the two spellings is the list."""
        if "targetIds" not in attrs and "target_ids" not in attrs:
            raise serializers.ValidationError({"targetIds": TARGET_IDS_MESSAGES["required"]})
        return attrs
