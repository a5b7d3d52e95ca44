"""Reading segment bodies: create (seed 002's persons, or seed 003's filter), update, targets.

audiences.api.contract validates each body (types, shapes, limits, the keys of every object;
the schema's source too). What is left here is what a schema cannot say: the rules between
fields (a segment is explicit or dynamic) and the mapping of a person onto a lead's fields.
A dynamic segment's filter is checked against the lead fields when the segment is saved.
"""

from typing import Any

from setter.api.contract import validated_body
from setter.api.errors import BadRequest

from .contract import CreateSegmentSerializer, SegmentChangesSerializer, TargetIdsSerializer

ALL_USERS_KEYS = ("allUsers", "all_users")
# Person fields and the lead fields they fill.
PERSON_TEXT_FIELDS = {
    "externalId": "external_id",
    "firstName": "first_name",
    "lastName": "last_name",
    "email": "email",
    "timeZone": "time_zone",
}


def segment_from_body(data) -> dict:
    """name, description, leads (seed 002's persons, as dicts of lead fields) and a dynamic
    segment's filter and all_leads, of a valid body; BadRequest else."""
    data = validated_body(data, CreateSegmentSerializer)
    errors: list[str] = []
    leads = [_lead(person) for person in data.get("persons") or ()]
    filter_obj, all_leads = _definition(data, errors)
    if leads and (filter_obj is not None or all_leads):
        errors.append("persons: not with filter or allUsers (a segment is explicit or dynamic)")
    if errors:
        raise BadRequest("; ".join(errors))
    return {
        "api_id": data.get("id"),
        "name": data["name"],
        "description": data.get("description") or "",
        "leads": leads,
        "filter": filter_obj,
        "all_leads": all_leads,
    }


def segment_changes_from_body(data) -> dict:
    """The fields a PATCH sets, as update_segment's keywords; absent ones are left alone."""
    data = validated_body(data, SegmentChangesSerializer)
    errors: list[str] = []
    changes: dict[str, Any] = {}
    if "name" in data:
        changes["name"] = data["name"]
    if "description" in data:
        changes["description"] = data["description"] or ""
    filter_obj, all_leads = _definition(data, errors)
    if "filter" in data:
        changes["filter"] = filter_obj
    if any(key in data for key in ALL_USERS_KEYS):
        changes["all_leads"] = all_leads
    if errors:
        raise BadRequest("; ".join(errors))
    return changes


def target_ids_from_body(data) -> list[int]:
    """`{"targetIds": [...]}` (or target_ids): lead ids as strings or numbers."""
    data = validated_body(data, TargetIdsSerializer)
    return data["target_ids"] if "target_ids" in data else data["targetIds"]


def _definition(data: dict, errors: list[str]) -> tuple[dict | None, bool]:
    """A dynamic segment's filter and allUsers (seed 003), which exclude each other."""
    filter_obj = data.get("filter")
    key = next((key for key in ALL_USERS_KEYS if key in data), "allUsers")
    all_leads = bool(data.get(key))
    if filter_obj is not None and all_leads:
        errors.append(f"filter: not with {key}: true (they are mutually exclusive)")
    return filter_obj, all_leads


def _lead(person: dict) -> dict:
    """A person as a lead's fields: absent and null texts are empty, substitutionTags the
    template variables {tag: value}."""
    lead = {field: person.get(key) or "" for key, field in PERSON_TEXT_FIELDS.items()}
    lead["phone"] = person.get("phone") or person.get("phoneNumber") or ""
    tags = person.get("substitutionTags") or ()
    lead["variables"] = {tag["tag"]: tag.get("value") or "" for tag in tags}
    return lead
