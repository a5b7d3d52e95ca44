"""Request and response shapes of the partner webhooks, in the seeds' camelCase.

Each body is declared once here (setter.api.contract): the schema publishes these shapes and
the views read the bodies by them. The audience filter's serializer validates the top-level
fields; the long lists (100,000 leads, 50,000 events) are checked by plain loops over the keys
declared here instead of one nested serializer per item, which would cost seconds. A lead
event's values are checked by the service, row by row (seed 001: a malformed event is that
event's reject), but its keys and NUL here, for the whole call.
"""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.models import AudienceFilterEvent
from setter.api.bodies import NUL_MESSAGE, nul_place, unknown_keys
from setter.api.contract import StrictChoiceField, StrictIntegerField, StrictSerializer, keys
from setter.api.errors import MAX_REPORTED_ERRORS
from setter.ids import MAX_ID

from .exceptions import BODY_PATH, InvalidPayload

MAX_FILTER_LEADS = 100_000
MAX_LEAD_EVENTS = 50_000
FILTER_LEADS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "maxItems": MAX_FILTER_LEADS,
    "items": {
        "type": "object",
        "description": "A lead to match: externalId and/or phoneE164.",
        "additionalProperties": False,
        "properties": {
            "externalId": {
                "type": "string",
                "description": "The lead's external_id from the audience CSV (case-sensitive).",
            },
            "phoneE164": {
                "type": "string",
                "description": "The lead's phone; normalised like audience phones.",
            },
        },
    },
}
FILTER_LEAD_KEYS = tuple(FILTER_LEADS_SCHEMA["items"]["properties"])


@extend_schema_field(FILTER_LEADS_SCHEMA)
class FilterLeadsField(serializers.Field):
    """1–100,000 objects, each with a non-empty string externalId and/or phoneE164."""

    def to_internal_value(self, data):
        if not isinstance(data, list):
            raise serializers.ValidationError("Expected a list of lead objects.")
        if not 1 <= len(data) <= MAX_FILTER_LEADS:
            raise serializers.ValidationError(
                f"Expected 1 to {MAX_FILTER_LEADS:,} leads, got {len(data):,}."
            )
        errors = {}
        for index, lead in enumerate(data):
            problem = _lead_problem(lead)
            if problem:
                errors[index] = problem
                if len(errors) == MAX_REPORTED_ERRORS:
                    break
        if errors:
            # DRF keeps the lead indexes as the keys; the stub only allows str keys.
            raise serializers.ValidationError(errors)  # type: ignore[arg-type]
        return data

    def to_representation(self, value):
        return value


def _lead_problem(lead) -> dict | list | None:
    if not isinstance(lead, dict):
        return ["Expected an object with externalId and/or phoneE164."]
    problems = {key: [message] for key, message in unknown_keys(lead, FILTER_LEAD_KEYS)}
    for name in FILTER_LEAD_KEYS:
        value = lead.get(name)
        if value is not None and not isinstance(value, str):
            problems[name] = ["Expected a string."]
        elif value is not None and "\x00" in value:
            problems[name] = [NUL_MESSAGE]
    if problems:
        return problems
    if not lead.get("externalId") and not lead.get("phoneE164"):
        return ["Each lead needs externalId or phoneE164."]
    return None


class AudienceFilterRequestSerializer(StrictSerializer):
    """Seed 000's four fields and no others: an unknown key is refused, not ignored."""

    campaignId = StrictIntegerField(
        min_value=1, max_value=MAX_ID, help_text="Campaign that owns the targeted send."
    )
    sendId = StrictIntegerField(
        min_value=1,
        max_value=MAX_ID,
        help_text="Send to filter. Must currently be in pending status with "
        "audienceFilterMode = webhook_filtered.",
    )
    mode = StrictChoiceField(
        choices=AudienceFilterEvent.Mode.values,
        help_text="include — send only to listed leads. exclude — send to everyone EXCEPT "
        "listed leads.",
    )
    leads = FilterLeadsField()


class AudienceFilterResponseSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=["accepted", "already_received"],
        help_text="accepted on first delivery; already_received if this exact payload was "
        "already recorded for this send.",
    )
    leadCount = serializers.IntegerField(
        required=False,
        help_text="Count of leads in the accepted payload (omitted on already_received).",
    )


class LeadEventSerializer(serializers.Serializer):
    phoneE164 = serializers.CharField(
        help_text="The lead's phone, parsed with libphonenumber: +15551234567 and 15551234567 "
        "are the same lead."
    )
    eventType = serializers.CharField(
        max_length=100, help_text="What happened, e.g. mastery_purchase (case-sensitive)."
    )
    occurredAt = serializers.DateTimeField(
        help_text="When it happened: ISO 8601 with a UTC offset, e.g. 2026-05-17T18:30:00Z."
    )


class LeadEventBatchSerializer(serializers.Serializer):
    events = LeadEventSerializer(many=True, help_text=f"1 to {MAX_LEAD_EVENTS:,} events.")


LEAD_EVENT_KEYS = keys(LeadEventSerializer)
LEAD_EVENT_BATCH_KEYS = keys(LeadEventBatchSerializer)


class LeadEventRejectSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the event in the request (0-based).")
    reason = serializers.CharField()


class LeadEventResponseSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Events stored by this call.")
    duplicates = serializers.IntegerField(
        help_text="Events dropped because the same (phoneE164, eventType, occurredAt) was "
        "already stored, or appeared earlier in this call."
    )
    rejected = serializers.IntegerField(help_text="Events refused; see rejects.")
    rejects = LeadEventRejectSerializer(many=True)


class FieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="Path in the body, e.g. leads[3].phoneE164; $ = body.")
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="Machine-readable code, e.g. unauthorized.")
    detail = serializers.CharField()
    # The body's `errors` member. This serializer only describes the schema, so shadowing
    # Serializer.errors (never read here) is harmless.
    errors = FieldErrorSerializer(many=True, required=False)  # type: ignore[assignment]


def lead_events_from_body(data) -> list:
    """The events of a lead-event body: one event object, or {"events": [...]}.

    Only the outer shape is checked here; each event is checked by the service, which reports
    bad ones per row instead of refusing the batch.
    """
    if not isinstance(data, dict):
        raise InvalidPayload(
            [{"field": BODY_PATH, "message": 'Expected an event object or {"events": [...]}.'}]
        )
    if "events" not in data:
        _refuse_unknown_or_nul([data])
        return [data]
    refusals = unknown_keys(data, LEAD_EVENT_BATCH_KEYS)
    if refusals:
        raise InvalidPayload([{"field": key, "message": message} for key, message in refusals])
    events = data["events"]
    if not isinstance(events, list):
        raise InvalidPayload([{"field": "events", "message": "Expected a list of event objects."}])
    if not 1 <= len(events) <= MAX_LEAD_EVENTS:
        message = f"Expected 1 to {MAX_LEAD_EVENTS:,} events, got {len(events):,}."
        raise InvalidPayload([{"field": "events", "message": message}])
    _refuse_unknown_or_nul(events, "events")
    return events


def _refuse_unknown_or_nul(events: list, where: str = "") -> None:
    """Seed 001's three fields per event, and no NUL (PostgreSQL cannot store it): a malformed
    value is one event's reject, but a key we do not know or a NUL refuses the call."""
    problems = []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            continue  # the service rejects it, as a row
        place = f"{where}[{index}]" if where else ""
        problems += unknown_keys(event, LEAD_EVENT_KEYS, place)
        nul = nul_place(event, place)
        if nul is not None:
            problems.append((nul, NUL_MESSAGE))
        if len(problems) >= MAX_REPORTED_ERRORS:
            break
    if problems:
        raise InvalidPayload(
            [{"field": key, "message": message} for key, message in problems[:MAX_REPORTED_ERRORS]]
        )
