"""The bodies the segment API takes, each declared once: the schema publishes these
serializers and audiences.api.parsing reads each object by their keys (setter.api.contract).

Seed 002's create body (its broadcastMediumId, segmentType, TagId and filters are accepted and
ignored), seed 003's type, filter and allUsers, the PATCH body and the target lists.
"""

from rest_framework import serializers

from audiences.segments import MAX_TARGETS_PER_CALL
from setter.api.contract import (
    FreeObjectField,
    IdField,
    StrictCharField,
    TextOrNumberField,
)

MAX_SEGMENT_PERSONS = 10_000
MAX_NAME_LENGTH = 200


class SubstitutionTagSerializer(serializers.Serializer):
    tag = StrictCharField(help_text="Template variable name, e.g. coupon.")
    value = TextOrNumberField(
        required=False, help_text="Its value for this person (a number is its text)."
    )


class PersonSerializer(serializers.Serializer):
    externalId = StrictCharField(required=False, help_text="Your id of the person.")
    firstName = StrictCharField(required=False)
    lastName = StrictCharField(required=False)
    phone = StrictCharField(
        required=False,
        help_text="WhatsApp number, ideally +E.164; without a country code it is read as US. "
        "phone or phoneNumber is required.",
    )
    phoneNumber = StrictCharField(required=False, help_text="Same as phone.")
    email = StrictCharField(required=False)
    substitutionTags = SubstitutionTagSerializer(
        many=True, required=False, help_text="Become the lead's template variables {tag: value}."
    )


class CreateSegmentSerializer(serializers.Serializer):
    id = serializers.RegexField(
        r"^(?![0-9]+$)[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$",
        required=False,
        help_text="Seed 003: your id for the segment (not only digits; 409 when taken); "
        "without one the segment's id is its number.",
    )
    name = StrictCharField(max_length=MAX_NAME_LENGTH)
    description = StrictCharField(required=False, allow_blank=True)
    broadcastMediumId = serializers.CharField(required=False, help_text="Accepted and ignored.")
    segmentType = serializers.CharField(required=False, help_text="Accepted and ignored.")
    TagId = serializers.CharField(required=False, help_text="Accepted and ignored.")
    filters = serializers.ListField(required=False, help_text="Accepted and ignored.")
    persons = PersonSerializer(
        many=True, required=False, help_text=f"Up to {MAX_SEGMENT_PERSONS:,} persons."
    )
    type = serializers.ChoiceField(
        ["user"], required=False, help_text="Seed 003: user (the only kind; channel is a 400)."
    )
    filter = FreeObjectField(
        required=False,
        help_text="Seed 003: a dynamic segment of the leads this filter matches (see Querying "
        "in docs/api.md); not with persons or allUsers.",
    )
    allUsers = serializers.BooleanField(
        required=False, help_text="Seed 003: a dynamic segment of every lead."
    )
    all_users = serializers.BooleanField(required=False, help_text="Same as allUsers.")


class SegmentChangesSerializer(serializers.Serializer):
    name = StrictCharField(required=False)
    description = StrictCharField(required=False, allow_blank=True)
    filter = FreeObjectField(
        required=False, allow_null=True, help_text="Dynamic segments only; replaces allUsers."
    )
    allUsers = serializers.BooleanField(
        required=False, help_text="Dynamic segments only; replaces the filter."
    )
    all_users = serializers.BooleanField(required=False, help_text="Same as allUsers.")


class TargetIdsSerializer(serializers.Serializer):
    targetIds = serializers.ListField(
        child=IdField(),
        required=False,
        help_text=f"Lead ids (persons[].id of create segment), at most {MAX_TARGETS_PER_CALL:,}.",
    )
    target_ids = serializers.ListField(
        child=IdField(), required=False, help_text="Same as targetIds."
    )
