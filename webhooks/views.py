"""The inbound partner webhooks: validate, authenticate in the organization's mode, call a service."""

from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from audiences import lead_events
from campaigns import audience_filters
from setter.api.contract import StrictIntegerField
from setter.api.parsing import (
    LEADING_MEMBER_BYTES,
    BodyAfterCredentials,
    Missing,
    OrjsonParser,
    leading_member,
    read_body,
)

from . import selectors
from .authentication import (
    ORGANIZATION_HEADER,
    ApiKeyAuthentication,
    IsPartnerOrganization,
    SignatureAuthentication,
)
from .exceptions import BODY_PATH, InvalidPayload, webhook_exception_handler
from .schema import audience_filter_schema, lead_events_schema
from .serializers import AudienceFilterRequestSerializer, lead_events_from_body


class PartnerWebhookView(BodyAfterCredentials, APIView):
    """Shared plumbing: the large-body limit, the credentials, and the JSON error shape."""

    authentication_classes = [ApiKeyAuthentication, SignatureAuthentication]
    permission_classes = [IsPartnerOrganization]
    parser_classes = [OrjsonParser]

    def get_exception_handler(self):
        return webhook_exception_handler

    def signing_organization(self, request):
        """The organization whose signing keys may have signed this request, if any: the
        one X-Setter-Organization names. Called before the body is parsed."""
        slug = request.headers.get(ORGANIZATION_HEADER, "").strip()
        return selectors.organization_by_slug(slug) if slug else None


class AudienceFilterView(PartnerWebhookView):
    @audience_filter_schema
    def post(self, request):
        serializer = AudienceFilterRequestSerializer(data=_json_object(request.data))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = audience_filters.record_audience_filter(
            organization=request.auth,
            campaign_id=data["campaignId"],
            send_id=data["sendId"],
            mode=data["mode"],
            leads=data["leads"],
        )
        body: dict[str, Any] = {"status": result.status}
        if result.lead_count is not None:
            body["leadCount"] = result.lead_count
        return Response(body)

    def signing_organization(self, request):
        """The organization X-Setter-Organization names or else, as the seed's signed example
        names none, the owner of campaignId among the body's first members (raw bytes: the
        body is not parsed before the signature is checked)."""
        if request.headers.get(ORGANIZATION_HEADER, "").strip():
            return super().signing_organization(request)
        try:
            raw_campaign_id = leading_member(read_body(request._request), "campaignId")
        except Missing:
            message = (
                f"Under HMAC, put campaignId before leads (within the first "
                f"{LEADING_MEMBER_BYTES:,} bytes of the body) or send {ORGANIZATION_HEADER}."
            )
            raise InvalidPayload([{"field": "campaignId", "message": message}]) from None
        try:
            campaign_id = StrictIntegerField(min_value=1).run_validation(raw_campaign_id)
        except ValidationError as exc:
            raise ValidationError({"campaignId": exc.detail}) from None
        return selectors.organization_owning_campaign(campaign_id)


class LeadEventsView(PartnerWebhookView):
    @lead_events_schema
    def post(self, request):
        events = lead_events_from_body(request.data)
        result = lead_events.record_lead_events(organization=request.auth, events=events)
        return Response(
            {
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "rejected": result.rejected,
                "rejects": result.rejects,
            }
        )


def _json_object(data):
    if not isinstance(data, dict):
        raise InvalidPayload([{"field": BODY_PATH, "message": "Expected a JSON object."}])
    return data
