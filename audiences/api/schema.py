"""OpenAPI description of the segment API: its key header, bodies and the seed's example."""

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers

from .parsing import MAX_SEGMENT_PERSONS


# Documentation only: audiences.api.parsing reads the body.
class SubstitutionTagSerializer(serializers.Serializer):
    tag = serializers.CharField(help_text="Template variable name, e.g. coupon.")
    value = serializers.CharField(help_text="Its value for this person.")


class PersonSerializer(serializers.Serializer):
    externalId = serializers.CharField(required=False, help_text="Your id of the person.")
    firstName = serializers.CharField(required=False)
    lastName = serializers.CharField(required=False)
    phone = serializers.CharField(
        required=False,
        help_text="WhatsApp number, ideally +E.164; without a country code it is read as US. "
        "phone or phoneNumber is required.",
    )
    phoneNumber = serializers.CharField(required=False, help_text="Same as phone.")
    email = serializers.CharField(required=False)
    substitutionTags = SubstitutionTagSerializer(
        many=True, required=False, help_text="Become the lead's template variables {tag: value}."
    )


class CreateSegmentSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    broadcastMediumId = serializers.CharField(required=False, help_text="Accepted and ignored.")
    segmentType = serializers.CharField(required=False, help_text="Accepted and ignored.")
    TagId = serializers.CharField(required=False, help_text="Accepted and ignored.")
    filters = serializers.ListField(required=False, help_text="Accepted and ignored.")
    persons = PersonSerializer(
        many=True, required=False, help_text=f"Up to {MAX_SEGMENT_PERSONS:,} persons."
    )


class CreatedPersonSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="Id of the lead created.")
    externalId = serializers.CharField()
    email = serializers.CharField()


class CreatedSegmentSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="Id of the audience created.")
    persons = CreatedPersonSerializer(many=True, help_text="In the order of the request.")


class CreateSegmentResponseSerializer(serializers.Serializer):
    data = CreatedSegmentSerializer()
    errorMessage = serializers.CharField(help_text="Always empty on 200.")


class BadRequestSerializer(serializers.Serializer):
    statusCode = serializers.IntegerField()
    message = serializers.CharField(help_text="Where the error is, e.g. persons[2].phone: ...")
    error = serializers.CharField()


class UnauthorizedSerializer(serializers.Serializer):
    statusCode = serializers.IntegerField()
    message = serializers.CharField()


SEED_SEGMENT_EXAMPLE = {
    "name": "string",
    "description": "string",
    "broadcastMediumId": "string",
    "segmentType": "string",
    "TagId": "string",
    "filters": [],
    "persons": [
        {
            "substitutionTags": [{"tag": "string", "value": "string"}],
            "externalId": "uuid",
            "firstName": "string",
            "lastName": "string",
            "phone": "string",
            "email": "string",
        },
        {
            "externalId": "uuid",
            "firstName": "string",
            "lastName": "string",
            "phoneNumber": "string",
            "email": "string",
        },
    ],
}

create_segment_schema = extend_schema(
    operation_id="create_segment",
    summary="Create a segment",
    description=(
        "Create an audience (source api) from the persons, synchronously. Phones go through "
        "the CSV upload's rules: normalised to E.164 (US when written without a country "
        "code); US numbers are stored as ineligible_geo (no marketing messages), later "
        "repeats of a phone as duplicate, unparseable ones as invalid_phone — all of them are "
        "stored and listed, but only ok leads are ever messaged. substitutionTags become the "
        "lead's template variables. broadcastMediumId, segmentType, TagId and filters are "
        "accepted and ignored. Nothing is stored on 400 or 401."
    ),
    request=CreateSegmentSerializer,
    responses={
        200: OpenApiResponse(CreateSegmentResponseSerializer, description="Segment created"),
        400: OpenApiResponse(BadRequestSerializer, description="Malformed JSON or bad field"),
        401: OpenApiResponse(UnauthorizedSerializer, description="Missing or wrong API key"),
    },
    examples=[
        OpenApiExample("Seed example", request_only=True, value=SEED_SEGMENT_EXAMPLE),
        OpenApiExample(
            "Created",
            response_only=True,
            status_codes=["200"],
            value={
                "data": {
                    "id": "12",
                    "persons": [
                        {"id": "3401", "externalId": "uuid", "email": "string"},
                        {"id": "3402", "externalId": "uuid", "email": "string"},
                    ],
                },
                "errorMessage": "",
            },
        ),
        OpenApiExample(
            "Bad request",
            response_only=True,
            status_codes=["400"],
            value={
                "statusCode": 400,
                "message": "persons[1].phone: required (phone or phoneNumber)",
                "error": "Bad Request",
            },
        ),
        OpenApiExample(
            "Unauthorized",
            response_only=True,
            status_codes=["401"],
            value={"statusCode": 401, "message": "Unauthorized"},
        ),
    ],
)
