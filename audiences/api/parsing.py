"""Reading segment bodies: create (seed 002's persons, or seed 003's filter), update, targets.

The keys each object may have are those audiences.api.contract declares (the schema's
source too). Plain loops rather than running a serializer per person: a call carries up to
10,000 of them. Each error names its place in the body (`persons[2].phone: ...`); the first few are reported
together so a partner can fix a payload in one round.
"""

from typing import Any

from audiences.ingest_rows import MAX_LENGTHS
from audiences.segments import MAX_TARGETS_PER_CALL
from setter.api.bodies import object_body, unknown_key_errors
from setter.api.contract import keys
from setter.api.errors import BadRequest
from setter.api.querying import parse_id
from setter.ids import api_id_problem

from .contract import (
    MAX_NAME_LENGTH,
    MAX_SEGMENT_PERSONS,
    CreateSegmentSerializer,
    SegmentChangesSerializer,
    TargetIdsSerializer,
)

MAX_REPORTED_ERRORS = 20
ALL_USERS_KEYS = ("allUsers", "all_users")
SEGMENT_KEYS = keys(CreateSegmentSerializer)
SEGMENT_CHANGE_KEYS = keys(SegmentChangesSerializer)
PERSON_KEYS = keys(CreateSegmentSerializer, "persons")
TAG_KEYS = keys(CreateSegmentSerializer, "persons", "substitutionTags")
TARGET_KEYS = keys(TargetIdsSerializer)
# Seed 003's segment types: channel segments do not exist here.
SEGMENT_TYPES = ("user",)
# Person fields and the lead fields they fill, with the lead field's length limit.
PERSON_TEXT_FIELDS = {
    "externalId": ("external_id", MAX_LENGTHS["external_id"]),
    "firstName": ("first_name", MAX_LENGTHS["name"]),
    "lastName": ("last_name", MAX_LENGTHS["name"]),
    "email": ("email", MAX_LENGTHS["email"]),
}


def segment_from_body(data) -> dict:
    """name, description, leads (seed 002's persons, as dicts of lead fields) and a dynamic segment's filter and
    all_leads, of a valid body; BadRequest else."""
    data = object_body(data, SEGMENT_KEYS)
    errors = []
    api_id = data.get("id")
    if api_id is not None and (problem := api_id_problem(api_id, numeric_allowed=False)):
        errors.append(f"id: {problem}")
    segment_type = data.get("type")
    if segment_type is not None and segment_type not in SEGMENT_TYPES:
        errors.append(f"type: expected user (the only kind of segment), got {segment_type!r}")
    name = _text(data.get("name"), "name", MAX_NAME_LENGTH, errors).strip()
    if not name and not errors:
        errors.append("name: required")
    description = _text(data.get("description"), "description", None, errors)
    persons = data.get("persons")
    if persons is None:
        persons = []
    elif not isinstance(persons, list):
        errors.append("persons: expected a list of person objects")
        persons = []
    elif len(persons) > MAX_SEGMENT_PERSONS:
        errors.append(f"persons: at most {MAX_SEGMENT_PERSONS:,} per call, got {len(persons):,}")
        persons = []
    leads = []
    for index, person in enumerate(persons):
        leads.append(_person(person, f"persons[{index}]", errors))
        if len(errors) >= MAX_REPORTED_ERRORS:
            break
    filter_obj, all_leads = _definition(data, errors)
    if leads and (filter_obj is not None or all_leads):
        errors.append("persons: not with filter or allUsers (a segment is explicit or dynamic)")
    if errors:
        raise BadRequest("; ".join(errors[:MAX_REPORTED_ERRORS]))
    return {
        "api_id": api_id,
        "name": name,
        "description": description,
        "leads": leads,
        "filter": filter_obj,
        "all_leads": all_leads,
    }


def segment_changes_from_body(data) -> dict:
    """The fields a PATCH sets, as update_segment's keywords; absent ones are left alone."""
    data = object_body(data, SEGMENT_CHANGE_KEYS)
    errors: list[str] = []
    changes: dict[str, Any] = {}
    if "name" in data:
        changes["name"] = _text(data["name"], "name", MAX_NAME_LENGTH, errors).strip()
        if not changes["name"] and not errors:
            errors.append("name: may not be empty")
    if "description" in data:
        changes["description"] = _text(data["description"], "description", None, errors)
    filter_obj, all_leads = _definition(data, errors)
    if "filter" in data:
        changes["filter"] = filter_obj
    if any(key in data for key in ALL_USERS_KEYS):
        changes["all_leads"] = all_leads
    if errors:
        raise BadRequest("; ".join(errors))
    return changes


def target_ids_from_body(data) -> list[int]:
    """`{"targetIds": [...]}`: lead ids as strings or numbers, at most 10,000."""
    data = object_body(data, TARGET_KEYS)
    key = "target_ids" if "target_ids" in data else "targetIds"
    ids = data.get(key)
    if not isinstance(ids, list):
        raise BadRequest(f"{key}: expected a list of target ids")
    if len(ids) > MAX_TARGETS_PER_CALL:
        raise BadRequest(f"{key}: at most {MAX_TARGETS_PER_CALL:,} per call, got {len(ids):,}")
    return [parse_id(value, f"{key}[{index}]") for index, value in enumerate(ids)]


def _definition(data: dict, errors: list[str]) -> tuple[dict | None, bool]:
    """A dynamic segment's filter and allUsers (seed 003); validated against the lead fields
    when the segment is saved."""
    filter_obj = data.get("filter")
    if filter_obj is not None and (not isinstance(filter_obj, dict) or not filter_obj):
        errors.append("filter: expected a non-empty object (or allUsers: true for every lead)")
        filter_obj = None
    key = next((key for key in ALL_USERS_KEYS if key in data), "allUsers")
    all_leads = data.get(key)
    if all_leads is None:
        all_leads = False
    elif not isinstance(all_leads, bool):
        errors.append(f"{key}: expected true or false")
        all_leads = False
    if filter_obj is not None and all_leads:
        errors.append(f"filter: not with {key}: true (they are mutually exclusive)")
    return filter_obj, all_leads


def _person(person, path: str, errors: list[str]) -> dict:
    if not isinstance(person, dict):
        errors.append(f"{path}: expected an object")
        return {}
    errors += unknown_key_errors(person, PERSON_KEYS, path)
    phone_key = "phone" if person.get("phone") is not None else "phoneNumber"
    reported = len(errors)
    phone = _text(person.get(phone_key), f"{path}.{phone_key}", MAX_LENGTHS["phone_raw"], errors)
    if not phone.strip() and len(errors) == reported:
        errors.append(f"{path}.phone: required (phone or phoneNumber)")
    lead = {"phone": phone, "variables": _variables(person.get("substitutionTags"), path, errors)}
    for key, (field, limit) in PERSON_TEXT_FIELDS.items():
        lead[field] = _text(person.get(key), f"{path}.{key}", limit, errors).strip()
    return lead


def _variables(tags, path: str, errors: list[str]) -> dict[str, str]:
    """substitutionTags [{tag, value}] as the lead's template variables {tag: value}."""
    if tags is None:
        return {}
    path = f"{path}.substitutionTags"
    if not isinstance(tags, list):
        errors.append(f"{path}: expected a list of {{tag, value}} objects")
        return {}
    variables = {}
    for index, item in enumerate(tags):
        where = f"{path}[{index}]"
        if not isinstance(item, dict):
            errors.append(f"{where}: expected an object with tag and value")
            continue
        errors += unknown_key_errors(item, TAG_KEYS, where)
        tag = _text(item.get("tag"), f"{where}.tag", None, errors).strip()
        if not tag:
            errors.append(f"{where}.tag: required")
            continue
        value = item.get("value")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        variables[tag] = _text(value, f"{where}.value", None, errors)
    return variables


def _text(value, path: str, limit: int | None, errors: list[str]) -> str:
    """A string field: null and absent read as empty (NUL was refused with the body)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.append(f"{path}: expected a string")
        return ""
    if limit is not None and len(value.strip()) > limit:
        errors.append(f"{path}: at most {limit} characters, got {len(value.strip())}")
        return ""
    return value
