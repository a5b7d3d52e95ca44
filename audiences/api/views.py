"""The REST API of audiences: authenticate the organization's key, read the body, call a service.

Every segment is looked up within the calling organization (hidden ones — a campaign's own
leads — are not segments of the API), so another organization's id is a 404 like one that
never existed.
"""

from contextlib import contextmanager

from django.db import IntegrityError, transaction
from django.db.models import Q
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from audiences import segments
from audiences.models import Audience
from audiences.services import create_api_audience
from setter.api.errors import BadRequest, Conflict
from setter.api.querying import compile_filter, paginate, parse_sort, query_from_body
from setter.api.renderers import OrjsonRenderer
from setter.api.views import ApiView
from setter.ids import pk_from_text

from . import schema
from .parsing import segment_changes_from_body, segment_from_body, target_ids_from_body
from .representations import (
    SEGMENT_DEFAULT_SORT,
    SEGMENT_FILTERS,
    SEGMENT_SORTS,
    TARGET_DEFAULT_SORT,
    TARGET_SORTS,
    segment_id,
    segment_json,
    target_rows,
)

DEFAULT_SEGMENTS_LIMIT = 25
DEFAULT_TARGETS_LIMIT = 1_000


def _segment(request, segment_id: str) -> Audience:
    """By number, or by the id the partner chose."""
    pk = pk_from_text(segment_id)
    lookup = Q(pk=pk) if pk is not None else Q(api_id=segment_id)
    audience = _visible(request).filter(lookup).first()
    if audience is None:
        raise NotFound(f"segment {segment_id} not found")
    return audience


def _visible(request):
    return Audience.objects.filter(organization=request.auth, hidden=False)


def _taken(api_id: str) -> Conflict:
    return Conflict(f"id: a segment with id {api_id!r} already exists")


@contextmanager
def _refusals(where: str = ""):
    """A segment service's refusals as the API's 400 (prefixed with where) and 409."""
    try:
        yield
    except segments.InvalidSegment as error:
        raise BadRequest(f"{where}{error}") from error
    except segments.SegmentConflict as error:
        raise Conflict(str(error)) from error


class SegmentsView(ApiView):
    @schema.create_segment_schema
    def post(self, request):
        segment = segment_from_body(request.data)
        api_id = segment.pop("api_id")
        try:
            with transaction.atomic():
                body = self._create(request, segment, api_id)
        except IntegrityError as error:  # the same id chosen concurrently
            raise _taken(api_id) from error
        return Response(body)

    def _create(self, request, segment: dict, api_id: str | None) -> dict:
        if api_id and Audience.objects.filter(organization=request.auth, api_id=api_id).exists():
            raise _taken(api_id)
        filter_obj, all_leads = segment.pop("filter"), segment.pop("all_leads")
        if filter_obj is not None or all_leads:
            with _refusals():
                audience = segments.create_segment(
                    request.auth,
                    name=segment["name"],
                    description=segment["description"],
                    filter=filter_obj,
                    all_leads=all_leads,
                )
            persons = []
        else:
            audience, leads = create_api_audience(organization=request.auth, **segment)
            persons = [
                {"id": str(lead.pk), "externalId": lead.external_id, "email": lead.email}
                for lead in leads
            ]
        if api_id:
            audience.api_id = api_id
            audience.save(update_fields=["api_id"])
        body = {"data": {"id": segment_id(audience), "persons": persons}, "errorMessage": ""}
        if filter_obj is not None or all_leads:
            body["segment"] = segment_json(audience)
        return body


class SegmentView(ApiView):
    @schema.get_segment_schema
    def get(self, request, segment_id):
        return Response({"segment": segment_json(_segment(request, segment_id))})

    @schema.update_segment_schema
    def patch(self, request, segment_id):
        audience = _segment(request, segment_id)
        changes = segment_changes_from_body(request.data)
        with _refusals():
            segments.update_segment(audience, **changes)
        return Response({"segment": segment_json(audience)})

    @schema.delete_segment_schema
    def delete(self, request, segment_id):
        audience = _segment(request, segment_id)
        with _refusals():
            segments.delete_segment(audience)
        return Response({"id": segment_id, "deleted": True})


class SegmentTargetsView(ApiView):
    @schema.add_targets_schema
    def post(self, request, segment_id):
        audience = _segment(request, segment_id)
        lead_ids = target_ids_from_body(request.data)
        with _refusals("targetIds: "):
            added = segments.add_targets(audience, lead_ids)
        return Response({"added": added, "size": audience.size})


class SegmentTargetsRemoveView(ApiView):
    @schema.remove_targets_schema
    def post(self, request, segment_id):
        audience = _segment(request, segment_id)
        lead_ids = target_ids_from_body(request.data)
        with _refusals("targetIds: "):
            removed = segments.remove_targets(audience, lead_ids)
        return Response({"removed": removed, "size": audience.size})


class SegmentTargetView(ApiView):
    @schema.target_exists_schema
    def get(self, request, segment_id, target_id):
        audience = _segment(request, segment_id)
        lead_id = pk_from_text(target_id)
        if lead_id is None or not segments.target_exists(audience, lead_id):
            raise NotFound(f"target {target_id} is not in segment {segment_id}")
        return Response({"exists": True})


class SegmentTargetsQueryView(ApiView):
    renderer_classes = [OrjsonRenderer]

    @schema.query_targets_schema
    def post(self, request, segment_id):
        audience = _segment(request, segment_id)
        query = query_from_body(request.data, default_limit=DEFAULT_TARGETS_LIMIT)
        leads = segments.members(audience).filter(
            compile_filter(query.filter, segments.LEAD_FILTER_FIELDS)
        )
        page = paginate(
            target_rows(leads),
            parse_sort(query.sort, TARGET_SORTS) or TARGET_DEFAULT_SORT,
            limit=query.limit,
            cursor=query.cursor,
            scope=f"segment {audience.pk} targets",
        )
        return Response({"targets": page.items, "next": page.next, "prev": page.prev})


class SegmentsQueryView(ApiView):
    @schema.query_segments_schema
    def post(self, request):
        query = query_from_body(request.data, default_limit=DEFAULT_SEGMENTS_LIMIT)
        page = paginate(
            _visible(request).filter(compile_filter(query.filter, SEGMENT_FILTERS)),
            parse_sort(query.sort, SEGMENT_SORTS) or SEGMENT_DEFAULT_SORT,
            limit=query.limit,
            cursor=query.cursor,
            scope="segments",
        )
        return Response(
            {
                "segments": [segment_json(a) for a in page.items],
                "next": page.next,
                "prev": page.prev,
            }
        )
