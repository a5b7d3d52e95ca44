"""REST API of outbound webhooks: a partner registers, lists and removes its endpoints, sees
recent deliveries and re-sends one. Every lookup is scoped to the calling organization."""

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from setter.api.contract import (
    StrictCharField,
    StrictChoiceField,
    StrictListField,
    StrictSerializer,
    no_body,
    validated_body,
)
from setter.api.errors import BadRequest, Conflict
from setter.api.views import ApiView
from setter.ids import pk_from_text
from webhooks.models import EventType, WebhookDelivery, WebhookEndpoint

from . import services

MAX_DELIVERIES_LISTED = 100
TAG = ["Webhook endpoints"]


class StrictURLField(serializers.URLField):
    """A URL, as a JSON string."""

    default_error_messages = {"invalid": "expected an http(s) URL"}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class EndpointInputSerializer(StrictSerializer):
    url = StrictURLField(
        max_length=2000,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="http(s) URL receiving POSTs.",
    )
    description = StrictCharField(max_length=200, required=False, default="", trim_whitespace=True)
    eventTypes = StrictListField(
        child=StrictChoiceField(EventType.values),
        required=False,
        default=list,
        help_text="Event types to receive; empty or absent: all of them.",
    )


class EndpointSerializer(serializers.Serializer):
    id = serializers.CharField()
    url = serializers.CharField()
    description = serializers.CharField()
    eventTypes = serializers.ListField(child=serializers.CharField(), help_text="Empty: all.")
    active = serializers.BooleanField()
    disabledReason = serializers.CharField(help_text="Why we stopped delivering, e.g. 410 Gone.")
    createdAt = serializers.DateTimeField()


class CreatedEndpointSerializer(EndpointSerializer):
    secret = serializers.CharField(help_text="whsec_… signing secret, shown only in this answer.")


class DeliverySerializer(serializers.Serializer):
    id = serializers.CharField()
    eventId = serializers.CharField(help_text="The webhook-id header.")
    eventType = serializers.CharField()
    status = serializers.ChoiceField(WebhookDelivery.Status.values)
    attemptCount = serializers.IntegerField()
    nextAttemptAt = serializers.DateTimeField(allow_null=True)
    lastStatusCode = serializers.IntegerField(allow_null=True)
    lastError = serializers.CharField()
    createdAt = serializers.DateTimeField()


def endpoint_json(endpoint: WebhookEndpoint) -> dict:
    return {
        "id": str(endpoint.pk),
        "url": endpoint.url,
        "description": endpoint.description,
        "eventTypes": endpoint.event_types,
        "active": endpoint.is_active,
        "disabledReason": endpoint.disabled_reason,
        "createdAt": _iso(endpoint.created_at),
    }


def delivery_json(delivery: WebhookDelivery) -> dict:
    return {
        "id": str(delivery.pk),
        "eventId": delivery.event_id,
        "eventType": delivery.event_type,
        "status": delivery.status,
        "attemptCount": delivery.attempt_count,
        "nextAttemptAt": _iso(delivery.next_attempt_at),
        "lastStatusCode": delivery.last_status_code,
        "lastError": delivery.last_error,
        "createdAt": _iso(delivery.created_at),
    }


def _iso(moment):
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _endpoint(request, endpoint_id: str) -> WebhookEndpoint:
    """Another organization's endpoint, or a malformed id, is simply not found."""
    endpoint = WebhookEndpoint.objects.filter(  # type: ignore[misc]  # pk=None matches no row: not found
        pk=pk_from_text(endpoint_id), organization=request.auth
    ).first()
    if endpoint is None:
        raise NotFound("Webhook endpoint not found.")
    return endpoint


class WebhookEndpointsView(ApiView):
    @extend_schema(
        tags=TAG,
        operation_id="list_webhook_endpoints",
        summary="List webhook endpoints",
        description=f"Every endpoint of the organization (at most "
        f"{services.MAX_ENDPOINTS_PER_ORGANIZATION}). Secrets are never shown again.",
        responses={200: inline_serializer("EndpointList", {"data": EndpointSerializer(many=True)})},
    )
    def get(self, request):
        endpoints = WebhookEndpoint.objects.filter(organization=request.auth)
        return Response({"data": [endpoint_json(e) for e in endpoints]})

    @extend_schema(
        tags=TAG,
        operation_id="create_webhook_endpoint",
        summary="Register a webhook endpoint",
        description="Events are POSTed to the URL signed per Standard Webhooks with the "
        "returned secret. The secret is in this answer only: store it now.",
        request=EndpointInputSerializer,
        responses={201: CreatedEndpointSerializer, 400: OpenApiResponse(description="Bad field")},
    )
    def post(self, request):
        data = validated_body(request.data, EndpointInputSerializer)
        try:
            endpoint = services.create_endpoint(
                request.auth,
                data["url"],
                description=data["description"],
                event_types=data["eventTypes"],
            )
        except ValidationError as error:
            raise BadRequest(_named(error)) from None
        body = {**endpoint_json(endpoint), "secret": endpoint.secret}
        return Response(body, status=status.HTTP_201_CREATED)


def _named(error: ValidationError) -> str:
    """A model validation error as the API's message, each problem after its field."""
    if not hasattr(error, "error_dict"):
        return "; ".join(error.messages)
    return "; ".join(
        f"{_API_FIELDS.get(field, field)}: {message}"
        for field, messages in error.message_dict.items()
        for message in messages
    )


_API_FIELDS = {"event_types": "eventTypes"}


class WebhookEndpointView(ApiView):
    @extend_schema(
        tags=TAG,
        operation_id="get_webhook_endpoint",
        summary="Get a webhook endpoint",
        responses={200: EndpointSerializer, 404: OpenApiResponse(description="No such endpoint")},
    )
    def get(self, request, endpoint_id):
        return Response(endpoint_json(_endpoint(request, endpoint_id)))

    @extend_schema(
        tags=TAG,
        operation_id="delete_webhook_endpoint",
        summary="Delete a webhook endpoint",
        description="Nothing more is delivered to it; its delivery log goes with it.",
        responses={204: None, 404: OpenApiResponse(description="No such endpoint")},
    )
    def delete(self, request, endpoint_id):
        _endpoint(request, endpoint_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveriesView(ApiView):
    @extend_schema(
        tags=TAG,
        operation_id="list_webhook_deliveries",
        summary="Recent deliveries of an endpoint",
        description=f"The latest {MAX_DELIVERIES_LISTED}, newest first.",
        parameters=[OpenApiParameter("status", enum=WebhookDelivery.Status.values, required=False)],
        responses={
            200: inline_serializer("DeliveryList", {"data": DeliverySerializer(many=True)}),
            404: OpenApiResponse(description="No such endpoint"),
        },
    )
    def get(self, request, endpoint_id):
        deliveries = _endpoint(request, endpoint_id).deliveries.all()
        wanted = request.query_params.get("status")
        if wanted is not None:
            if wanted not in WebhookDelivery.Status.values:
                raise BadRequest(f"status: one of {', '.join(WebhookDelivery.Status.values)}")
            deliveries = deliveries.filter(status=wanted)
        return Response({"data": [delivery_json(d) for d in deliveries[:MAX_DELIVERIES_LISTED]]})


class ResendDeliveryView(ApiView):
    @extend_schema(
        tags=TAG,
        operation_id="resend_webhook_delivery",
        summary="Re-send a delivery",
        description="Queues the event again with the same webhook-id, from the first step of "
        "the retry schedule. 409 while it is being delivered.",
        request=None,
        responses={
            202: DeliverySerializer,
            404: OpenApiResponse(description="No such endpoint or delivery"),
            409: OpenApiResponse(description="Being delivered right now"),
        },
    )
    def post(self, request, endpoint_id, delivery_id):
        no_body(request.data)
        endpoint = _endpoint(request, endpoint_id)
        delivery = endpoint.deliveries.filter(pk=pk_from_text(delivery_id)).first()  # type: ignore[misc]  # pk=None matches no row: not found
        if delivery is None:
            raise NotFound("Webhook delivery not found.")
        if not services.resend(delivery):
            raise Conflict("The delivery is being delivered right now; try again shortly.")
        return Response(delivery_json(delivery), status=status.HTTP_202_ACCEPTED)
