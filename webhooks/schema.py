"""OpenAPI descriptions of the partner webhooks: their credentials, bodies and the seeds' examples."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)

from .authentication import ORGANIZATION_HEADER, SIGNATURE_HEADER
from .serializers import (
    AudienceFilterRequestSerializer,
    AudienceFilterResponseSerializer,
    ErrorSerializer,
    LeadEventBatchSerializer,
    LeadEventResponseSerializer,
    LeadEventSerializer,
)


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "webhooks.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Any active API key of your organization (inbound mode: API key).",
        }


class SignatureAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "webhooks.authentication.SignatureAuthentication"
    name = "hmacSignature"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": SIGNATURE_HEADER,
            "description": (
                "`sha256=<hex>`: HMAC-SHA256 of the raw request body with any active signing "
                "key of your organization (inbound mode: HMAC). Lead events also need "
                f"{ORGANIZATION_HEADER}: <organization slug>."
            ),
        }


ERROR_RESPONSES = {
    400: OpenApiResponse(ErrorSerializer, description="Malformed JSON or an invalid field."),
    401: OpenApiResponse(ErrorSerializer, description="Missing, wrong or revoked credentials."),
    413: OpenApiResponse(ErrorSerializer, description="Body larger than the endpoint accepts."),
    415: OpenApiResponse(ErrorSerializer, description="A body that is not application/json."),
}

SEED_FILTER_EXAMPLES = [
    OpenApiExample(
        "Include by external id",
        request_only=True,
        value={
            "campaignId": 42,
            "sendId": 137,
            "mode": "include",
            "leads": [{"externalId": "your_lead_id_001"}, {"externalId": "your_lead_id_002"}],
        },
    ),
    OpenApiExample(
        "Exclude by phone",
        request_only=True,
        value={
            "campaignId": 42,
            "sendId": 137,
            "mode": "exclude",
            "leads": [{"phoneE164": "+15551234567"}, {"phoneE164": "+15557654321"}],
        },
    ),
    OpenApiExample(
        "Accepted", response_only=True, value={"status": "accepted", "leadCount": 12345}
    ),
    OpenApiExample("Replay", response_only=True, value={"status": "already_received"}),
]


audience_filter_schema = extend_schema(
    operation_id="audience_filter",
    summary="Filter a send's audience",
    description=(
        "Narrow one pending send to (include) or away from (exclude) the listed leads, "
        "until 5 minutes before it fires. The latest filter event of a send counts; an "
        "exact replay of a recorded payload answers already_received and changes nothing. "
        "Under HMAC the organization is the one X-Setter-Organization names or else the owner "
        "of campaignId, which must then start within the body's first 4,096 bytes (put it "
        "before leads, as the seed's example does)."
    ),
    parameters=[
        OpenApiParameter(
            ORGANIZATION_HEADER,
            location=OpenApiParameter.HEADER,
            required=False,
            description="Your organization's slug. Optional with X-Setter-Signature (HMAC): "
            "without it campaignId names the organization. Ignored with an API key.",
        )
    ],
    request=AudienceFilterRequestSerializer,
    responses={
        200: OpenApiResponse(
            AudienceFilterResponseSerializer,
            description="Filter event recorded (or duplicate of an earlier payload)",
        ),
        **ERROR_RESPONSES,
        404: OpenApiResponse(ErrorSerializer, description="No such send in your campaign."),
        409: OpenApiResponse(
            ErrorSerializer,
            description="The send is not pending, its audience filter is off, or the "
            "filter deadline has passed (error: send_not_pending, audience_filter_off, "
            "filter_deadline_passed).",
        ),
    },
    examples=SEED_FILTER_EXAMPLES,
    tags=["Inbound webhooks"],
)


lead_events_schema = extend_schema(
    operation_id="lead_events",
    summary="Record lead events",
    description=(
        'One event, or up to 50,000 in {"events": [...]}. A repeated (phoneE164, '
        "eventType, occurredAt) is dropped as a duplicate; rows that cannot be used are "
        "listed in rejects (index, reason) and the rest are stored. Under HMAC, name your "
        f"organization with {ORGANIZATION_HEADER}."
    ),
    parameters=[
        OpenApiParameter(
            ORGANIZATION_HEADER,
            location=OpenApiParameter.HEADER,
            required=False,
            description="Your organization's slug. Required with X-Setter-Signature (HMAC); "
            "ignored with an API key, whose organization is the caller.",
        )
    ],
    request=PolymorphicProxySerializer(
        component_name="LeadEventRequest",
        serializers=[LeadEventSerializer, LeadEventBatchSerializer],
        resource_type_field_name=None,
    ),
    responses={
        200: OpenApiResponse(
            LeadEventResponseSerializer, description="Counts of stored, duplicate and refused"
        ),
        **ERROR_RESPONSES,
    },
    examples=[
        OpenApiExample(
            "One event",
            request_only=True,
            value={
                "phoneE164": "+15551234567",
                "eventType": "mastery_purchase",
                "occurredAt": "2026-05-17T18:30:00Z",
            },
        ),
        OpenApiExample(
            "Batch",
            request_only=True,
            value={
                "events": [
                    {
                        "phoneE164": "+15551234567",
                        "eventType": "webinar_attended",
                        "occurredAt": "2026-05-17T18:30:00Z",
                    },
                    {
                        "phoneE164": "15557654321",
                        "eventType": "webinar_attended",
                        "occurredAt": "2026-05-17T19:02:11-04:00",
                    },
                ]
            },
        ),
        OpenApiExample(
            "Counts",
            response_only=True,
            value={
                "accepted": 1,
                "duplicates": 0,
                "rejected": 1,
                "rejects": [{"index": 1, "reason": "phoneE164 is not a valid phone number: '12'."}],
            },
        ),
    ],
    tags=["Inbound webhooks"],
)
