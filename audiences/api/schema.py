"""OpenAPI description of the segment API: its operations, answers and the seed's example;
the bodies are declared in audiences.api.contract."""

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers

from audiences.models import Lead
from audiences.segments import MAX_TARGETS_PER_CALL
from setter.api.contract import QueryRequestSerializer

from .contract import CreateSegmentSerializer, SegmentChangesSerializer, TargetIdsSerializer


class CreatedPersonSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="Id of the lead created.")
    externalId = serializers.CharField()
    email = serializers.CharField()


class CreatedSegmentSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="Id of the audience created.")
    persons = CreatedPersonSerializer(many=True, help_text="In the order of the request.")


class SegmentSerializer(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.CharField(help_text="Always user.")
    kind = serializers.ChoiceField(
        ["csv", "persons", "targets", "dynamic"],
        help_text="csv: an upload; persons: created with persons; targets: explicit targets "
        "only; dynamic: a filter or allUsers.",
    )
    name = serializers.CharField()
    description = serializers.CharField()
    filter = serializers.JSONField(allow_null=True)
    allUsers = serializers.BooleanField()
    size = serializers.IntegerField(
        help_text="Members; counted asynchronously for dynamic segments (after each change and "
        "each send), kept in place as targets are added or removed."
    )
    status = serializers.ChoiceField(["pending", "ingesting", "ready", "failed"])
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()


class CreateSegmentResponseSerializer(serializers.Serializer):
    # The seed's `data` member. This serializer only describes the schema, so shadowing
    # Serializer.data (never read here) is harmless.
    data = CreatedSegmentSerializer()  # type: ignore[assignment]
    errorMessage = serializers.CharField(help_text="Always empty on 200.")
    segment = SegmentSerializer(required=False, help_text="Dynamic segments only.")


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
        "accepted and ignored. Nothing is stored on 400 or 401. Without persons the segment "
        "is empty, for targets added later; with filter (or allUsers: true) instead of "
        "persons it is dynamic, and the answer adds the segment object. type is user (or "
        "absent): any other is a 400. id: your own id for it, honoured like a campaign's."
    ),
    request=CreateSegmentSerializer,
    responses={
        200: OpenApiResponse(CreateSegmentResponseSerializer, description="Segment created"),
        400: OpenApiResponse(BadRequestSerializer, description="Malformed JSON or bad field"),
        401: OpenApiResponse(UnauthorizedSerializer, description="Missing or wrong API key"),
        409: OpenApiResponse(BadRequestSerializer, description="The chosen id is taken"),
    },
    examples=[
        OpenApiExample("Seed example", request_only=True, value=SEED_SEGMENT_EXAMPLE),
        OpenApiExample(
            "Dynamic segment",
            request_only=True,
            value={
                "name": "New app users",
                "filter": {"created_at": {"$gte": "2020-01-01T00:00:00Z"}},
            },
        ),
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


# ---------------------------------------------------------------------------------------------
# Seed 003's segment operations


class SegmentResponseSerializer(serializers.Serializer):
    segment = SegmentSerializer()


class AddedSerializer(serializers.Serializer):
    added = serializers.IntegerField(help_text="Leads that were not members yet.")
    size = serializers.IntegerField()


class RemovedSerializer(serializers.Serializer):
    removed = serializers.IntegerField(help_text="Leads that were members.")
    size = serializers.IntegerField()


class ExistsSerializer(serializers.Serializer):
    exists = serializers.BooleanField(help_text="Always true; a non-member answers 404.")


class DeletedSerializer(serializers.Serializer):
    id = serializers.CharField()
    deleted = serializers.BooleanField()


class TargetSerializer(serializers.Serializer):
    targetId = serializers.CharField()
    externalId = serializers.CharField()
    phone = serializers.CharField(help_text="E.164, empty when the phone was invalid.")
    region = serializers.CharField()
    firstName = serializers.CharField()
    lastName = serializers.CharField()
    email = serializers.CharField()
    variables = serializers.DictField(help_text="The lead's template variables.")
    status = serializers.ChoiceField(Lead.IngestStatus.values)
    limitedReporting = serializers.BooleanField()
    timeZone = serializers.CharField(help_text="The lead's own IANA zone; empty: its phone's.")
    createdAt = serializers.DateTimeField()


class TargetPageSerializer(serializers.Serializer):
    targets = TargetSerializer(many=True)
    next = serializers.CharField(allow_null=True, help_text="Null on the last page.")
    prev = serializers.CharField(allow_null=True, help_text="Null on the first page.")


class SegmentPageSerializer(serializers.Serializer):
    segments = SegmentSerializer(many=True)
    next = serializers.CharField(allow_null=True, help_text="Null on the last page.")
    prev = serializers.CharField(allow_null=True, help_text="Null on the first page.")


class ApiErrorSerializer(serializers.Serializer):
    statusCode = serializers.IntegerField()
    message = serializers.CharField()
    error = serializers.CharField()


SEGMENT_EXAMPLE = {
    "id": "12",
    "type": "user",
    "kind": "dynamic",
    "name": "People in the UK",
    "description": "",
    "filter": {"country": "GB"},
    "allUsers": False,
    "size": 5120,
    "status": "ready",
    "createdAt": "2026-11-23T10:00:00Z",
    "updatedAt": "2026-11-23T10:00:00Z",
}
ERRORS = {
    400: OpenApiResponse(ApiErrorSerializer, description="Bad body; message says where"),
    401: OpenApiResponse(UnauthorizedSerializer, description="Missing or wrong API key"),
    404: OpenApiResponse(ApiErrorSerializer, description="No such segment in your organization"),
}


def _segment_operation(
    operation_id, summary, description, *, request=None, ok, examples=(), conflict=None
):
    responses = {200: ok, **ERRORS}
    if conflict:
        responses[409] = OpenApiResponse(ApiErrorSerializer, description=conflict)
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        description=description,
        request=request,
        responses=responses,
        examples=list(examples),
    )


def _example(name, value, *, request=False):
    if request:
        return OpenApiExample(name, request_only=True, value=value)
    return OpenApiExample(name, response_only=True, status_codes=["200"], value=value)


get_segment_schema = _segment_operation(
    "get_segment",
    "Get a segment",
    "The segment with its size. Another organization's id answers 404.",
    ok=SegmentResponseSerializer,
    examples=[_example("Segment", {"segment": SEGMENT_EXAMPLE})],
)
update_segment_schema = _segment_operation(
    "update_segment",
    "Update a segment",
    "Sets the fields given. filter and allUsers apply to dynamic segments only (409 on an "
    "explicit one) and replace each other; a new filter is validated (400 naming the field) "
    "and the size is counted again asynchronously.",
    request=SegmentChangesSerializer,
    ok=SegmentResponseSerializer,
    examples=[
        _example("New filter", {"filter": {"country": {"$in": ["GB", "IE"]}}}, request=True),
        _example("Segment", {"segment": SEGMENT_EXAMPLE}),
    ],
    conflict="filter or allUsers on an explicit segment",
)
delete_segment_schema = _segment_operation(
    "delete_segment",
    "Delete a segment",
    "Deletes the segment and the leads it owns (its CSV rows or persons), permanently: there "
    "is no soft delete (no deletedAt); the id answers 404 afterwards. Refused with 409 while a "
    "scheduled, running or paused campaign targets it.",
    ok=DeletedSerializer,
    examples=[_example("Deleted", {"id": "12", "deleted": True})],
    conflict="A scheduled, running or paused campaign uses the segment",
)
add_targets_schema = _segment_operation(
    "add_segment_targets",
    "Add targets",
    f"Adds up to {MAX_TARGETS_PER_CALL:,} of your leads to an explicit segment, in one "
    "statement. Members already in it are skipped; any id that is not one of your leads "
    "fails the whole call (400 naming the first few) and adds nothing.",
    request=TargetIdsSerializer,
    ok=AddedSerializer,
    examples=[
        _example("Targets", {"targetIds": ["3401", "3402"]}, request=True),
        _example("Added", {"added": 2, "size": 2}),
    ],
    conflict="The segment is dynamic (its targets are its filter's) or still ingesting",
)
remove_targets_schema = _segment_operation(
    "remove_segment_targets",
    "Remove targets",
    "Removes leads from an explicit segment; ids that are not members are no error. A lead "
    "the segment owns (a row of its CSV, a person it was created with) is deleted.",
    request=TargetIdsSerializer,
    ok=RemovedSerializer,
    examples=[
        _example("Targets", {"targetIds": ["3401", "999999"]}, request=True),
        _example("Removed", {"removed": 1, "size": 1}),
    ],
    conflict="The segment is dynamic",
)
target_exists_schema = _segment_operation(
    "segment_target_exists",
    "Does a target exist in a segment",
    '200 {"exists": true} when the lead is a member (for a dynamic segment: its filter '
    "matches it now), else 404.",
    ok=ExistsSerializer,
    examples=[_example("Member", {"exists": True})],
)
query_targets_schema = _segment_operation(
    "query_segment_targets",
    "Query a segment's targets",
    "A page of the segment's members (up to 10,000; 1,000 by default), filtered over the "
    "lead fields and sorted by targetId ascending unless sort says otherwise. Pass next "
    "back for the following page; next is null on the last one.",
    request=QueryRequestSerializer,
    ok=TargetPageSerializer,
    examples=[
        _example(
            "Seed example",
            {
                "filter": {"target_id": {"$gte": "3401"}},
                "sort": [{"field": "target_id", "direction": -1}],
                "limit": 10000,
            },
            request=True,
        ),
        _example(
            "Page",
            {
                "targets": [
                    {
                        "targetId": "3402",
                        "externalId": "crm-2",
                        "phone": "+447400123457",
                        "region": "GB",
                        "firstName": "Ana",
                        "lastName": "Silva",
                        "email": "ana@example.com",
                        "variables": {"tier": "gold"},
                        "status": "ok",
                        "limitedReporting": True,
                        "createdAt": "2026-11-23T10:00:00.123456Z",
                    }
                ],
                "next": "WyJhdWRpZW5jZXMu...",
                "prev": None,
            },
        ),
    ],
)
query_segments_schema = _segment_operation(
    "query_segments",
    "Query segments",
    "A page of your segments (25 by default, up to 10,000), filtered on id, name, "
    "description, type, kind, status, allUsers, size, createdAt and updatedAt, newest first "
    "unless sort says otherwise.",
    request=QueryRequestSerializer,
    ok=SegmentPageSerializer,
    examples=[
        _example(
            "Seed example",
            {
                "filter": {"name": "<name>"},
                "sort": [{"field": "created_at", "direction": -1}],
                "limit": 30,
            },
            request=True,
        ),
        _example("Page", {"segments": [SEGMENT_EXAMPLE], "next": None, "prev": None}),
    ],
)
