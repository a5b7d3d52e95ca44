"""Segments and targets as the API shows them (camelCase), and the fields a query may name."""

from django.db.models import CharField, F, QuerySet
from django.db.models.functions import Cast

from audiences.models import Audience, Lead
from setter.api.querying import FilterField, both_cases

# The API's name of each kind of segment (Audience.source).
KINDS = {
    "csv": Audience.Source.CSV,
    "persons": Audience.Source.API,
    "targets": Audience.Source.TARGETS,
    "dynamic": Audience.Source.DYNAMIC,
}
KIND_NAMES: dict[str, str] = {source: kind for kind, source in KINDS.items()}

SEGMENT_FILTERS = both_cases(
    {
        "id": FilterField("id", "id"),
        "name": FilterField("name", "text"),
        "description": FilterField("description", "text"),
        "type": FilterField("source", "text", values={"user": list(KINDS.values())}),
        "kind": FilterField("source", "text", values=dict(KINDS)),
        "status": FilterField("status", "text", values={s: s for s in Audience.Status}),
        "all_users": FilterField("all_leads", "bool"),
        "size": FilterField("size", "number"),
        "created_at": FilterField("created_at", "datetime"),
        "updated_at": FilterField("updated_at", "datetime"),
    }
)
SEGMENT_SORTS = both_cases(
    {
        "id": "id",
        "name": "name",
        "size": "size",
        "created_at": "created_at",
        "updated_at": "updated_at",
    }
)
SEGMENT_DEFAULT_SORT = [("created_at", True)]
TARGET_SORTS = both_cases(
    {
        "id": "id",
        "target_id": "id",
        "external_id": "external_id",
        "phone": "phone_e164",
        "first_name": "first_name",
        "last_name": "last_name",
        "email": "email",
        "created_at": "created_at",
    }
)
# Seed 003: "The list of users is sorted by ID ASC".
TARGET_DEFAULT_SORT = [("id", False)]

# A target as the API shows it, read straight from the database (no model objects): the
# fields whose API name is the column's, then the renamed ones.
TARGET_COLUMNS = ("region", "email", "variables")
TARGET_RENAMED = {
    "targetId": Cast("id", CharField()),
    "externalId": F("external_id"),
    "phone": F("phone_e164"),
    "firstName": F("first_name"),
    "lastName": F("last_name"),
    "status": F("ingest_status"),
    "limitedReporting": F("limited_reporting"),
    "timeZone": F("time_zone"),
    "createdAt": F("created_at"),
}


def segment_id(audience: Audience) -> str:
    """A segment's id in the API: the one its partner chose, else its number."""
    return audience.api_id or str(audience.pk)


def segment_json(audience: Audience) -> dict:
    return {
        "id": segment_id(audience),
        "type": "user",
        "kind": KIND_NAMES[audience.source],
        "name": audience.name,
        "description": audience.description,
        "filter": audience.filter,
        "allUsers": audience.all_leads,
        "size": audience.size,
        "status": audience.status,
        "createdAt": audience.created_at,
        "updatedAt": audience.updated_at,
    }


def target_rows(leads: QuerySet[Lead]) -> QuerySet:
    return leads.values(*TARGET_COLUMNS, **TARGET_RENAMED)
