"""`GET`/`PATCH /api/v1/organization/delivery-settings` (issue 16.5): the organization's
defaults and limits for every campaign — the default time zone of new sends, the frequency
cap, the quality guard's thresholds — as the admin's organization page edits them, through
the same model validators (setter.services.update_delivery_settings)."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from audiences.api.schema import BadRequestSerializer, UnauthorizedSerializer
from messaging.time_zones import organization_time_zone
from setter.api.contract import (
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    StrictNumberField,
    StrictSerializer,
    validated_body,
)
from setter.api.errors import BadRequest
from setter.api.views import ApiView
from setter.models import Organization
from setter.services import update_delivery_settings

from .contract import SendWindowObjectSerializer, SendWindowSerializer
from .send_windows import window_fields, window_json

# API path → model field.
FIELDS = {
    "defaultTimeZone": "default_time_zone",
    "frequencyCap.messages": "frequency_cap_messages",
    "frequencyCap.days": "frequency_cap_days",
    "frequencyCap.utility": "frequency_cap_utility",
    "qualityGuard.failurePercent": "guard_failure_percent",
    "qualityGuard.failureWindow": "guard_failure_window",
    "qualityGuard.stopPercent": "guard_stop_percent",
    "sendWindow.start": "window_start",
    "sendWindow.end": "window_end",
    "sendWindow.days": "window_days",
    "sendWindow.outside": "window_outside",
}
PATHS = {field: path for path, field in FIELDS.items()}


# The bounds said as the admin's organization page says them (Django's model validators).
BOUND_MESSAGES = {
    "min_value": "Ensure this value is greater than or equal to {min_value}.",
    "max_value": "Ensure this value is less than or equal to {max_value}.",
}


class FrequencyCapSerializer(StrictSerializer):
    messages = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        error_messages={**BOUND_MESSAGES, "invalid": "expected an integer or null"},
        help_text="At most this many marketing messages per phone in `days`, across all "
        "campaigns; null turns the cap off (the default).",
    )
    days = StrictIntegerField(
        required=False,
        min_value=1,
        max_value=365,
        error_messages={**BOUND_MESSAGES, "invalid": "expected an integer"},
    )
    utility = StrictBooleanField(required=False, help_text="Cap (and count) utility sends too.")


class QualityGuardSerializer(StrictSerializer):
    failurePercent = StrictIntegerField(
        required=False,
        min_value=1,
        max_value=100,
        error_messages={**BOUND_MESSAGES, "invalid": "expected an integer"},
        help_text="Pause a running send when more than this share of its last answers are "
        "recipient-permanent failures.",
    )
    failureWindow = StrictIntegerField(
        required=False,
        min_value=20,
        max_value=10_000,
        error_messages={**BOUND_MESSAGES, "invalid": "expected an integer"},
        help_text="Answers the share is over.",
    )
    stopPercent = StrictNumberField(
        required=False,
        min_value=0.01,
        max_value=100,
        help_text="Pause a send when STOP replies within an hour of its start pass this share "
        "of the messages it sent (counted from 100 sent).",
    )


class DeliverySettingsBodySerializer(StrictSerializer):
    defaultTimeZone = StrictCharField(
        required=False,
        allow_blank=True,
        error_messages={"invalid": 'expected a string (an IANA zone, or "")'},
        help_text='IANA zone new sends start in; "": the zone of the country of the '
        "organization's first WhatsApp number (UTC without one).",
    )
    frequencyCap = FrequencyCapSerializer(required=False)
    qualityGuard = QualityGuardSerializer(required=False)
    sendWindow = SendWindowSerializer(
        required=False,
        allow_null=True,
        help_text="Quiet hours of campaigns without a window of their own; null: none.",
    )


class DeliverySettingsSerializer(serializers.Serializer):
    defaultTimeZone = serializers.CharField()
    effectiveTimeZone = serializers.CharField(help_text="The zone new sends start in now.")
    frequencyCap = FrequencyCapSerializer()
    qualityGuard = QualityGuardSerializer()
    sendWindow = SendWindowObjectSerializer(allow_null=True)


class DeliverySettingsResponseSerializer(serializers.Serializer):
    deliverySettings = DeliverySettingsSerializer()


def delivery_settings_json(organization: Organization) -> dict:
    return {
        "defaultTimeZone": organization.default_time_zone,
        "effectiveTimeZone": organization_time_zone(organization),
        "frequencyCap": {
            "messages": organization.frequency_cap_messages,
            "days": organization.frequency_cap_days,
            "utility": organization.frequency_cap_utility,
        },
        "qualityGuard": {
            "failurePercent": organization.guard_failure_percent,
            "failureWindow": organization.guard_failure_window,
            "stopPercent": float(organization.guard_stop_percent),
        },
        "sendWindow": window_json(organization),
    }


def _changes(data: dict) -> dict:
    """Model field → value for every key the validated body gives."""
    flat = {"defaultTimeZone": data["defaultTimeZone"]} if "defaultTimeZone" in data else {}
    for group in ("frequencyCap", "qualityGuard"):
        flat |= {f"{group}.{key}": value for key, value in data.get(group, {}).items()}
    changes = {FIELDS[path]: value for path, value in flat.items()}
    if "sendWindow" in data:  # its rule: the organization's clean(), in the service
        changes |= window_fields(data["sendWindow"])
    if "guard_stop_percent" in changes:
        percent = Decimal(str(changes["guard_stop_percent"]))
        changes["guard_stop_percent"] = percent.quantize(Decimal("0.01"))
    return changes


settings_schema = extend_schema(
    operation_id="get_delivery_settings",
    summary="Read the organization's delivery settings",
    responses={200: DeliverySettingsResponseSerializer, 401: UnauthorizedSerializer},
)
update_schema = extend_schema(
    operation_id="update_delivery_settings",
    summary="Change the organization's delivery settings",
    description="Only the keys given change; each is checked like the admin's organization "
    "page checks it (a cap of 0, a window of 400 days or an unknown zone is a 400 naming it).",
    request=DeliverySettingsBodySerializer,
    responses={
        200: DeliverySettingsResponseSerializer,
        400: BadRequestSerializer,
        401: UnauthorizedSerializer,
    },
    examples=[
        OpenApiExample(
            "Two marketing messages a week",
            request_only=True,
            value={"frequencyCap": {"messages": 2, "days": 7}},
        )
    ],
)


class DeliverySettingsView(ApiView):
    @settings_schema
    def get(self, request):
        return Response({"deliverySettings": delivery_settings_json(request.auth)})

    @update_schema
    def patch(self, request):
        changes = _changes(validated_body(request.data, DeliverySettingsBodySerializer))
        try:
            organization = update_delivery_settings(request.auth, changes)
        except ValidationError as invalid:
            raise BadRequest(
                "; ".join(
                    f"{PATHS[field]}: {message}"
                    for field, messages in invalid.message_dict.items()
                    for message in messages
                )
            ) from invalid
        return Response({"deliverySettings": delivery_settings_json(organization)})
