"""`GET`/`PATCH /api/v1/organization/delivery-settings` (issue 16.5): the organization's
defaults and limits for every campaign — the default time zone of new sends, the frequency
cap, the quality guard's thresholds — as the admin's organization page edits them, through
the same model validators (setter.services.update_delivery_settings)."""

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from audiences.api.schema import BadRequestSerializer, UnauthorizedSerializer
from messaging.time_zones import organization_time_zone
from setter.api.bodies import unknown_key_errors
from setter.api.contract import StrictCharField, StrictIntegerField, declared_body, keys
from setter.api.errors import BadRequest
from setter.api.views import ApiView
from setter.models import Organization
from setter.services import update_delivery_settings

# API path → model field.
FIELDS = {
    "defaultTimeZone": "default_time_zone",
    "frequencyCap.messages": "frequency_cap_messages",
    "frequencyCap.days": "frequency_cap_days",
    "frequencyCap.utility": "frequency_cap_utility",
    "qualityGuard.failurePercent": "guard_failure_percent",
    "qualityGuard.failureWindow": "guard_failure_window",
    "qualityGuard.stopPercent": "guard_stop_percent",
}
PATHS = {field: path for path, field in FIELDS.items()}


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean: DRF's BooleanField would also take "yes" and 1."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class FrequencyCapSerializer(serializers.Serializer):
    messages = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="At most this many marketing messages per phone in `days`, across all "
        "campaigns; null turns the cap off (the default).",
    )
    days = StrictIntegerField(required=False, min_value=1, max_value=365)
    utility = StrictBooleanField(required=False, help_text="Cap (and count) utility sends too.")


class QualityGuardSerializer(serializers.Serializer):
    failurePercent = StrictIntegerField(
        required=False,
        min_value=1,
        max_value=100,
        help_text="Pause a running send when more than this share of its last answers are "
        "recipient-permanent failures.",
    )
    failureWindow = StrictIntegerField(
        required=False, min_value=20, max_value=10_000, help_text="Answers the share is over."
    )
    stopPercent = serializers.FloatField(
        required=False,
        min_value=0.01,
        max_value=100,
        help_text="Pause a send when STOP replies within an hour of its start pass this share "
        "of the messages it sent (counted from 100 sent).",
    )


class DeliverySettingsBodySerializer(serializers.Serializer):
    defaultTimeZone = StrictCharField(
        required=False,
        allow_blank=True,
        help_text='IANA zone new sends start in; "": the zone of the country of the '
        "organization's first WhatsApp number (UTC without one).",
    )
    frequencyCap = FrequencyCapSerializer(required=False)
    qualityGuard = QualityGuardSerializer(required=False)


class DeliverySettingsSerializer(serializers.Serializer):
    defaultTimeZone = serializers.CharField()
    effectiveTimeZone = serializers.CharField(help_text="The zone new sends start in now.")
    frequencyCap = FrequencyCapSerializer()
    qualityGuard = QualityGuardSerializer()


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
    }


def _changes(data: dict) -> tuple[dict, list[str]]:
    """Model field → value for every key given; the type problems by path."""
    changes: dict = {}
    problems: list[str] = []
    flat = {"defaultTimeZone": data["defaultTimeZone"]} if "defaultTimeZone" in data else {}
    for group in ("frequencyCap", "qualityGuard"):
        if group not in data:
            continue
        nested = data[group]
        if not isinstance(nested, dict):
            problems.append(f"{group}: expected an object")
            continue
        known = keys(DeliverySettingsBodySerializer, group)
        problems += unknown_key_errors(nested, known, group)
        flat |= {f"{group}.{key}": value for key, value in nested.items() if key in known}
    for path, value in flat.items():
        field = FIELDS[path]
        problem = _type_problem(path, value)
        if problem:
            problems.append(f"{path}: {problem}")
        elif field == "guard_stop_percent":
            try:
                changes[field] = Decimal(str(value)).quantize(Decimal("0.01"))
            except InvalidOperation:
                problems.append(f"{path}: expected a number")
        else:
            changes[field] = value
    return changes, problems


def _type_problem(path: str, value) -> str:
    if path == "defaultTimeZone":
        return "" if isinstance(value, str) else 'expected a string (an IANA zone, or "")'
    if path == "frequencyCap.utility":
        return "" if isinstance(value, bool) else "expected true or false"
    if path == "qualityGuard.stopPercent":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return "" if ok else "expected a number"
    if path == "frequencyCap.messages" and value is None:
        return ""
    ok = isinstance(value, int) and not isinstance(value, bool)
    return "" if ok else "expected an integer" + (" or null" if path.endswith("messages") else "")


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
        changes, problems = _changes(declared_body(request.data, DeliverySettingsBodySerializer))
        if problems:
            raise BadRequest("; ".join(problems))
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
