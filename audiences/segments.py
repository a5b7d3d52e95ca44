"""Segments (seed 003): explicit sets of leads and dynamic filters over an organization's leads.

A segment is an Audience. Its members are the leads it owns (the rows of its CSV, the persons
of the create-segment API) plus the leads added to it as targets — or, for a dynamic segment,
the organization's leads its filter matches (every lead with all_leads), evaluated again each
time a send materializes. Filters use the API's query language (setter.api.querying) over
LEAD_FILTER_FIELDS and are validated when saved.

Writes are set-based: adding 10,000 targets is one INSERT … SELECT, whatever the segment's
size. `size` is kept in place as targets come and go; for dynamic segments a task counts it
after each change of the filter and after each send that materialized it.
"""

import functools
import json
import operator
from collections.abc import Iterable

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from campaigns.models import Campaign, SendRecipient
from setter.api.querying import FilterField, both_cases, compile_filter

from . import selectors
from .models import Audience, Lead, SegmentTarget

MAX_TARGETS_PER_CALL = 10_000
REPORTED_UNKNOWN_TARGETS = 5

# The lead fields a dynamic filter (and a targets query) may name, snake_case or camelCase.
LEAD_FILTER_FIELDS = both_cases(
    {
        "id": FilterField("id", "id"),
        "target_id": FilterField("id", "id"),
        "external_id": FilterField("external_id", "text"),
        "phone": FilterField("phone_e164", "text"),
        "region": FilterField("region", "text"),
        "country": FilterField("region", "country"),
        "first_name": FilterField("first_name", "text"),
        "last_name": FilterField("last_name", "text"),
        "email": FilterField("email", "text"),
        "created_at": FilterField("created_at", "datetime"),
        "limited_reporting": FilterField("limited_reporting", "bool"),
        "status": FilterField(
            "ingest_status", "text", values={status: status for status in Lead.IngestStatus}
        ),
        "segment": FilterField("audience_id", "id"),
        "variables": FilterField("variables", "json"),
    }
)

_UNSET = object()


class InvalidSegment(ValueError):
    """The segment or the call's data is not acceptable (the API answers 400)."""


class SegmentConflict(Exception):
    """The segment's kind or use forbids the call (the API answers 409)."""


def create_segment(
    organization,
    *,
    name: str,
    description: str = "",
    filter: dict | None = None,
    all_leads: bool = False,
    hidden: bool = False,
) -> Audience:
    """A ready segment: dynamic with a filter or all_leads, else explicit and empty (its
    members come from add_targets). hidden ones (a campaign's own leads) are not listed."""
    _check_definition(filter, all_leads)
    dynamic = filter is not None or all_leads
    audience = Audience.objects.create(
        organization=organization,
        name=name,
        description=description,
        source=Audience.Source.DYNAMIC if dynamic else Audience.Source.TARGETS,
        status=Audience.Status.READY,
        default_region=settings.AUDIENCE_DEFAULT_REGION,
        filter=filter,
        all_leads=all_leads,
        hidden=hidden,
    )
    if dynamic:
        _enqueue_count(audience.pk)
    return audience


def update_segment(
    audience: Audience, *, name=_UNSET, description=_UNSET, filter=_UNSET, all_leads=_UNSET
) -> Audience:
    """Change what was given. A filter or all_leads only applies to a dynamic segment, and
    replaces the other (a dynamic segment keeps exactly one of them)."""
    if (filter is not _UNSET or all_leads is not _UNSET) and not is_dynamic(audience):
        raise SegmentConflict(
            f"segment {audience.pk} has explicit members; filter and allUsers belong to "
            "dynamic segments (create one instead)"
        )
    if filter is not _UNSET and all_leads is not _UNSET:
        new_filter, new_all = filter, all_leads
    elif filter is not _UNSET:
        new_filter, new_all = filter, audience.all_leads and filter is None
    elif all_leads is not _UNSET:
        new_filter, new_all = (None if all_leads else audience.filter), all_leads
    else:
        new_filter, new_all = audience.filter, audience.all_leads
    if is_dynamic(audience):
        _check_definition(new_filter, new_all)
        if new_filter is None and not new_all:
            raise InvalidSegment("filter: a dynamic segment needs a filter or allUsers: true")
    redefined = (new_filter, new_all) != (audience.filter, audience.all_leads)
    if name is not _UNSET:
        audience.name = name
    if description is not _UNSET:
        audience.description = description
    audience.filter, audience.all_leads = new_filter, new_all
    # Not size: a count task may be writing it.
    audience.save(update_fields=["name", "description", "filter", "all_leads", "updated_at"])
    if redefined:
        _enqueue_count(audience.pk)
    return audience


def campaigns_using(audience: Audience) -> list[int]:
    """The first few scheduled, running or paused campaigns targeting the segment: while any
    exists, the segment may not be deleted."""
    return list(
        audience.campaigns.filter(status__in=Campaign.LIVE_STATUSES)
        .order_by("pk")
        .values_list("pk", flat=True)[:REPORTED_UNKNOWN_TARGETS]
    )


def delete_segment(audience: Audience) -> None:
    """Delete the segment and the leads it owns; refused while an active campaign uses it
    (draft and finished campaigns just lose it)."""
    using = campaigns_using(audience)
    if using:
        raise SegmentConflict(
            f"segment {audience.pk} is used by campaign(s) {', '.join(map(str, using))} that "
            "are scheduled, running or paused: stop or finish them first"
        )
    with transaction.atomic():
        owned = Lead.objects.filter(audience=audience)
        _forget_targets(owned, keep=audience)
        _delete_leads(owned, audience)
        audience.delete()


def _delete_leads(owned: QuerySet[Lead], audience: Audience) -> None:
    """Set-based: Django's cascade would load every lead (a CSV segment may own millions)
    to null their messages' `lead`. Messages keep their phone and status for the analytics."""
    SegmentTarget.objects.filter(Q(audience=audience) | Q(lead__in=owned)).delete()
    SendRecipient.objects.filter(lead__in=owned).update(lead=None)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Lead._meta.db_table} WHERE audience_id = %s", [audience.pk])


def is_dynamic(audience: Audience) -> bool:
    return audience.source == Audience.Source.DYNAMIC


def add_targets(audience: Audience, lead_ids: list[int]) -> int:
    """Add the organization's leads to an explicit segment; how many were not members yet.

    One INSERT … SELECT … ON CONFLICT DO NOTHING. Any id that is not a lead of the segment's
    organization fails the whole call (InvalidSegment naming the first few) and adds nothing.
    Leads the segment already has (owned or targets) are skipped.
    """
    _check_explicit(audience)
    _check_count(lead_ids)
    if not lead_ids:
        return 0
    lead_table = Lead._meta.db_table
    wanted, wanted_params = _id_list_sql(lead_ids)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT w.id FROM ({wanted}) w WHERE NOT EXISTS (SELECT 1 FROM {lead_table} l "
            "WHERE l.id = w.id AND l.organization_id = %s) ORDER BY w.id LIMIT %s",
            [*wanted_params, audience.organization_id, REPORTED_UNKNOWN_TARGETS + 1],
        )
        unknown = [row[0] for row in cursor.fetchall()]
        if unknown:
            shown = ", ".join(map(str, unknown[:REPORTED_UNKNOWN_TARGETS]))
            more = " and more" if len(unknown) > REPORTED_UNKNOWN_TARGETS else ""
            raise InvalidSegment(
                f"unknown targets (no such lead in this organization): {shown}{more}"
            )
        cursor.execute(
            f"INSERT INTO {SegmentTarget._meta.db_table} (audience_id, lead_id) "
            f"SELECT %s, l.id FROM {lead_table} l WHERE l.id IN ({wanted}) "
            "AND l.organization_id = %s AND l.audience_id <> %s "
            "ON CONFLICT (audience_id, lead_id) DO NOTHING",
            [audience.pk, *wanted_params, audience.organization_id, audience.pk],
        )
        added = cursor.rowcount
        _resize(audience, added)
    return added


def remove_targets(audience: Audience, lead_ids: list[int]) -> int:
    """Remove leads from an explicit segment; how many were members. Absent ids are no error.

    A lead the segment owns (a row of its CSV, a person of the create-segment call) exists
    only because of this segment, so removing it deletes the lead itself — it leaves every
    other segment it was a target of, and sends keep their recipient rows without it.
    """
    _check_explicit(audience)
    _check_count(lead_ids)
    if not lead_ids:
        return 0
    with transaction.atomic():
        removed, _ = SegmentTarget.objects.filter(audience=audience, lead_id__in=lead_ids).delete()
        owned = Lead.objects.filter(audience=audience, pk__in=lead_ids)
        deleted = 0
        if owned.exists():
            _forget_targets(owned, keep=audience)
            deleted = owned.delete()[1].get(Lead._meta.label, 0)
            counts = selectors.count_leads_by_status(audience.pk)
            Audience.objects.filter(pk=audience.pk).update(
                **{f"count_{status}": count for status, count in counts.items()}
            )
        _resize(audience, -(removed + deleted))
    return removed + deleted


def target_exists(audience: Audience, lead_id: int) -> bool:
    return members(audience).filter(pk=lead_id).exists()


def members(audience: Audience) -> QuerySet[Lead]:
    """The segment's leads, each once, as a queryset to filter, sort and page."""
    if is_dynamic(audience):
        return Lead.objects.filter(organization_id=audience.organization_id).filter(
            dynamic_q(audience)
        )
    # A join from the targets' unique index: pages of targets in id order stay cheap.
    targets = Lead.objects.filter(segment_targets__audience=audience)
    if audience.source == Audience.Source.TARGETS:
        return targets
    owned = Lead.objects.filter(audience=audience)
    if not SegmentTarget.objects.filter(audience=audience).exists():
        return owned
    return Lead.objects.filter(
        Q(audience=audience)
        | Q(pk__in=SegmentTarget.objects.filter(audience=audience).values("lead_id"))
    )


def dynamic_q(audience: Audience) -> Q:
    """The dynamic segment's condition on the organization's leads."""
    return Q() if audience.all_leads else compile_filter(audience.filter, LEAD_FILTER_FIELDS)


def members_of_any(audiences: Iterable[Audience]) -> Q:
    """Leads that are members of any of these segments (of one organization)."""
    audiences = list(audiences)
    ids = [audience.pk for audience in audiences]
    q = Q(audience_id__in=ids) | Q(
        pk__in=SegmentTarget.objects.filter(audience_id__in=ids).values("lead_id")
    )
    for audience in audiences:
        if is_dynamic(audience):
            q |= Q(organization_id=audience.organization_id) & dynamic_q(audience)
    return q


def dynamic_members_sql(audiences: Iterable[Audience]) -> tuple[str, list] | None:
    """`SELECT id FROM lead WHERE …` of the dynamic segments' members, for the materializer to
    embed; None when no segment is dynamic. Compiled by the ORM, so on either database."""
    dynamic = [audience for audience in audiences if is_dynamic(audience)]
    if not dynamic:
        return None
    conditions = [dynamic_q(audience) for audience in dynamic]
    # An empty Q (all_leads) would vanish from an OR instead of matching everything.
    q = Q() if not all(conditions) else functools.reduce(operator.or_, conditions)
    leads = Lead.objects.filter(organization_id=dynamic[0].organization_id).filter(q)
    sql, params = leads.order_by().values("id").query.sql_with_params()
    return sql, list(params)


def count_members(audience: Audience) -> int:
    return members(audience).count()


def refresh_size(audience_id: int) -> None:
    """Count a dynamic segment's members now (an explicit one's size is kept in place)."""
    audience = Audience.objects.filter(pk=audience_id).first()
    if audience is None or not is_dynamic(audience):
        return
    Audience.objects.filter(pk=audience_id).update(size=count_members(audience))


def refresh_sizes_after_commit(audience_ids: Iterable[int]) -> None:
    """Recount these segments once the current transaction commits (a send materialized)."""
    for audience_id in audience_ids:
        _enqueue_count(audience_id)


def _enqueue_count(audience_id: int) -> None:
    from .tasks import refresh_segment_size_task  # tasks imports this module

    transaction.on_commit(lambda: refresh_segment_size_task.delay(audience_id))


def _check_definition(filter, all_leads: bool) -> None:
    if filter is not None and all_leads:
        raise InvalidSegment("filter and allUsers are mutually exclusive")
    if filter is not None:
        if not isinstance(filter, dict) or not filter:
            raise InvalidSegment("filter: expected a non-empty object (allUsers: true for all)")
        compile_filter(filter, LEAD_FILTER_FIELDS)


def _check_explicit(audience: Audience) -> None:
    if is_dynamic(audience):
        raise SegmentConflict(
            f"segment {audience.pk} is dynamic: its targets are the leads its filter matches"
        )
    if audience.status != Audience.Status.READY:
        raise SegmentConflict(f"segment {audience.pk} is {audience.status}, not ready")


def _check_count(lead_ids: list[int]) -> None:
    if len(lead_ids) > MAX_TARGETS_PER_CALL:
        raise InvalidSegment(
            f"at most {MAX_TARGETS_PER_CALL:,} targets per call, got {len(lead_ids):,}"
        )


def _resize(audience: Audience, change: int) -> None:
    now = timezone.now()
    if change:
        Audience.objects.filter(pk=audience.pk).update(size=F("size") + change, updated_at=now)
    audience.refresh_from_db(fields=["size", "updated_at"])


def _forget_targets(leads: QuerySet[Lead], *, keep: Audience) -> None:
    """Shrink the other segments these leads (about to be deleted) are targets of."""
    shrinking = (
        SegmentTarget.objects.filter(lead__in=leads)
        .exclude(audience=keep)
        .values("audience_id")
        .annotate(leaving=Count("id"))
    )
    for row in shrinking:
        Audience.objects.filter(pk=row["audience_id"]).update(size=F("size") - row["leaving"])


def _id_list_sql(ids: list[int]) -> tuple[str, list]:
    """A one-column relation `id` of the given ids, as one parameter on either database."""
    if connection.vendor == "postgresql":
        return "SELECT DISTINCT unnest(%s::bigint[]) AS id", [list(ids)]
    return "SELECT DISTINCT CAST(value AS INTEGER) AS id FROM json_each(%s)", [json.dumps(ids)]
