"""The REST API's query language: Mongo-style filters compiled to SQL, sorts, keyset cursors."""

import datetime as dt

import pytest
from django.db.models import F

from audiences.models import Lead
from audiences.segments import LEAD_FILTER_FIELDS
from campaigns.models import Campaign
from setter.api.errors import BadRequest
from setter.api.querying import (
    MAX_FILTER_DEPTH,
    FilterField,
    both_cases,
    compile_filter,
    paginate,
    parse_sort,
    query_from_body,
)
from tests.factories import AudienceFactory, CampaignFactory, LeadFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

JAN = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def leads():
    """Five leads named a–e with a spread of values, plus one of another organization."""
    audience = AudienceFactory()
    rows = [
        ("a", "Ana", "GB", {"tier": "gold", "visits": 3}, False, 0),
        ("b", "Bea", "GB", {"tier": "silver"}, True, 10),
        ("c", "", "IE", {}, False, 20),
        ("d", "Dan", "US", {"tier": "gold", "coupon": "X1"}, True, 30),
        ("e", "Eve", "", {"tier": None}, False, 40),
    ]
    for external_id, first_name, region, variables, limited, days in rows:
        lead = LeadFactory(
            audience=audience,
            external_id=external_id,
            first_name=first_name,
            region=region,
            variables=variables,
            limited_reporting=limited,
        )
        Lead.objects.filter(pk=lead.pk).update(created_at=JAN + dt.timedelta(days=days))
    LeadFactory(external_id="other-org", first_name="Ana", region="GB")
    return Lead.objects.filter(organization=audience.organization)


def matching(leads, filter_obj) -> list[str]:
    q = compile_filter(filter_obj, LEAD_FILTER_FIELDS)
    return sorted(leads.filter(q).values_list("external_id", flat=True))


@pytest.mark.parametrize(
    ("filter_obj", "expected"),
    [
        ({}, "abcde"),
        ({"region": "GB"}, "ab"),
        ({"region": {"$eq": "GB"}}, "ab"),
        ({"region": {"$ne": "GB"}}, "cde"),
        ({"country": {"$in": ["IE", "US"]}}, "cd"),
        ({"region": {"$nin": ["IE", "US"]}}, "abe"),
        ({"createdAt": {"$gt": "2026-01-11T00:00:00Z"}}, "cde"),
        ({"created_at": {"$gte": "2026-01-11T00:00:00Z"}}, "bcde"),
        ({"created_at": {"$lt": "2026-01-11"}}, "a"),
        ({"created_at": {"$lte": "2026-01-11T00:00:00+00:00"}}, "ab"),
        ({"created_at": {"$gte": "2026-01-11", "$lt": "2026-01-31"}}, "bc"),
        ({"firstName": {"$exists": True}}, "abde"),
        ({"first_name": {"$exists": False}}, "c"),
        ({"first_name": None}, "c"),
        ({"first_name": {"$ne": None}}, "abde"),
        ({"first_name": {"$gt": "B"}}, "bde"),
        ({"limitedReporting": True}, "bd"),
        ({"limited_reporting": {"$ne": True}}, "ace"),
        ({"variables.tier": "gold"}, "ad"),
        ({"variables.tier": {"$in": ["gold", "silver"]}}, "abd"),
        # $ne / $nin keep rows without the key, as MongoDB does.
        ({"variables.tier": {"$ne": "gold"}}, "bce"),
        ({"variables.tier": {"$nin": ["gold", "silver"]}}, "ce"),
        ({"variables.tier": {"$exists": True}}, "abde"),
        ({"variables.coupon": {"$exists": False}}, "abce"),
        ({"variables.visits": {"$gte": 3}}, "a"),
        ({"$or": [{"region": "IE"}, {"variables.tier": "silver"}]}, "bc"),
        ({"$and": [{"region": "GB"}, {"limited_reporting": False}]}, "a"),
        (
            {
                "$or": [
                    {"$and": [{"region": "GB"}, {"variables.tier": "gold"}]},
                    {"$and": [{"region": {"$ne": "GB"}}, {"limitedReporting": True}]},
                ]
            },
            "ad",
        ),
        (
            {
                "variables.tier": {"$exists": True},
                "$or": [{"region": {"$in": ["US", ""]}}, {"first_name": {"$lt": "B"}}],
            },
            "ade",
        ),
    ],
)
def test_each_operator_selects_the_expected_leads(leads, filter_obj, expected):
    assert matching(leads, filter_obj) == list(expected)


def test_ids_may_be_strings_or_numbers(leads):
    ids = sorted(leads.values_list("pk", flat=True))

    assert matching(leads, {"target_id": {"$gte": str(ids[3])}}) == ["d", "e"]
    assert matching(leads, {"id": {"$in": [ids[0], str(ids[1])]}}) == ["a", "b"]


def test_a_many_field_matches_each_row_once():
    org = OrganizationFactory()
    first, second, third = AudienceFactory.create_batch(3, organization=org)
    both = CampaignFactory(organization=org, name="both")
    both.audiences.set([first, second])
    only_third = CampaignFactory(organization=org, name="third")
    only_third.audiences.set([third])
    CampaignFactory(organization=org, name="none")
    fields = {"segments": FilterField("audiences", "many"), "name": FilterField("name", "text")}

    def names(filter_obj):
        q = compile_filter(filter_obj, fields)
        return sorted(Campaign.objects.filter(q).values_list("name", flat=True))

    assert names({"segments": {"$in": [first.pk, str(second.pk)]}}) == ["both"]
    assert names({"segments": str(third.pk)}) == ["third"]
    assert names({"segments": {"$nin": [first.pk]}}) == ["none", "third"]
    assert names({"segments": {"$ne": third.pk}}) == ["both", "none"]
    assert names({"segments": {"$exists": False}}) == ["none"]
    assert names({"$or": [{"segments": first.pk}, {"name": "none"}]}) == ["both", "none"]


def test_enumerations_map_api_values_to_stored_ones():
    fields = {
        "status": FilterField(
            "status",
            "text",
            values={"in_progress": "running", "stopped": ["paused", "cancelled"]},
        )
    }
    org = OrganizationFactory()
    for status in ("running", "paused", "cancelled", "draft"):
        CampaignFactory(organization=org, status=status, name=status)

    def names(filter_obj):
        return sorted(
            Campaign.objects.filter(compile_filter(filter_obj, fields)).values_list(
                "name", flat=True
            )
        )

    assert names({"status": "stopped"}) == ["cancelled", "paused"]
    assert names({"status": {"$in": ["in_progress", "stopped"]}}) == [
        "cancelled",
        "paused",
        "running",
    ]
    assert names({"status": {"$ne": "stopped"}}) == ["draft", "running"]
    with pytest.raises(BadRequest) as error:
        compile_filter({"status": {"$in": ["in_progress", "draftish"]}}, fields)
    assert str(error.value.detail) == (
        "filter.status.$in[1]: unknown value 'draftish' (expected one of in_progress, stopped)"
    )


def _error(filter_obj) -> str:
    with pytest.raises(BadRequest) as error:
        compile_filter(filter_obj, LEAD_FILTER_FIELDS)
    return str(error.value.detail)


def test_an_unknown_operator_is_named_with_its_place():
    message = _error({"$or": [{"region": "GB"}, {"created_at": {"$foo": 1}}]})

    assert message.startswith(
        "filter.$or[1].created_at.$foo: unknown operator (expected one of $eq, $ne, $in"
    )


@pytest.mark.parametrize(
    ("filter_obj", "message"),
    [
        ({"colour": "red"}, "filter.colour: unknown field (expected one of "),
        ({"$nor": []}, "filter.$nor: unknown operator (expected a field or one of $and, $or)"),
        ({"region": {"$in": "GB"}}, "filter.region.$in: expected a list"),
        ({"region": 7}, "filter.region: expected a string"),
        ({"created_at": {"$gte": "yesterday"}}, "filter.created_at.$gte: expected an ISO 8601"),
        ({"created_at": {"$gte": "2026-02-30"}}, "filter.created_at.$gte: expected an ISO 8601"),
        ({"target_id": "abc"}, "filter.target_id: expected an id"),
        ({"limitedReporting": {"$gt": True}}, "filter.limitedReporting.$gt: unknown operator"),
        ({"region": {"$exists": 1}}, "filter.region.$exists: expected true or false"),
        ({"$and": {}}, "filter.$and: expected a non-empty list of filters"),
        ({"$or": [{"region": "GB"}, "x"]}, "filter.$or[1]: expected an object"),
        ({"first_name.x": "a"}, "filter.first_name.x: first_name has no sub-keys"),
        ({"variables.a__b": "a"}, "filter.variables.a__b: invalid key"),
        ({"variables.tier": {"$eq": ["gold"]}}, "filter.variables.tier.$eq: expected a string"),
        ({"region": {"$in": ["GB"] * 10_001}}, "filter.region.$in: at most 10,000 values"),
    ],
)
def test_a_bad_filter_is_a_400_naming_the_place(filter_obj, message):
    assert _error(filter_obj).startswith(message)


def test_nesting_is_bounded():
    deep = {"region": "GB"}
    for _ in range(MAX_FILTER_DEPTH + 1):
        deep = {"$and": [deep]}

    assert "filters nest at most 8 levels deep" in _error(deep)


def test_field_names_read_in_both_cases():
    assert set(both_cases({"created_at": 1, "externalId": 2})) == {
        "created_at",
        "createdAt",
        "externalId",
        "external_id",
    }


def test_sort_reads_fields_and_directions():
    sortable = both_cases({"created_at": "created_at", "name": "name"})

    assert parse_sort([{"field": "createdAt", "direction": -1}, {"field": "name"}], sortable) == [
        ("created_at", True),
        ("name", False),
    ]
    assert parse_sort(None, sortable) == []
    for sort, message in [
        ([{"field": "size"}], "sort[0].field: unknown field 'size'"),
        ([{"field": "name", "direction": 0}], "sort[0].direction: expected 1 or -1"),
        ("name", "sort: expected a list"),
        ([{"field": "name"}, {"field": "name"}], "sort[1].field: name is already sorted on"),
    ]:
        with pytest.raises(BadRequest) as error:
            parse_sort(sort, sortable)
        assert str(error.value.detail).startswith(message)


def test_a_query_body_has_defaults_and_bounds():
    assert query_from_body({}, default_limit=25) == query_from_body(None, default_limit=25)
    assert query_from_body({"limit": 7, "next": "abc"}).limit == 7
    for body, message in [
        ({"limit": 10_001}, "limit: expected an integer from 1 to 10000"),
        ({"limit": 0}, "limit: expected an integer from 1 to 10000"),
        ({"filter": []}, "filter: expected an object"),
        ({"next": 5}, "next: invalid cursor"),
        ({"offset": 5}, "offset: unknown key"),
    ]:
        with pytest.raises(BadRequest) as error:
            query_from_body(body)
        assert str(error.value.detail).startswith(message)


def _walk(queryset, order, limit, **kwargs):
    """Every page's external ids, following next to the end."""
    pages, cursor = [], None
    while True:
        page = paginate(queryset, order, limit=limit, cursor=cursor, **kwargs)
        pages.append([row["external_id"] for row in page.items])
        cursor = page.next
        if cursor is None:
            return pages


def test_pages_follow_the_sort_with_the_pk_breaking_ties():
    audience = AudienceFactory()
    for n in range(7):
        LeadFactory(audience=audience, external_id=f"l{n}", region=["GB", "IE"][n % 2])
    leads = Lead.objects.filter(audience=audience).values("external_id", "region")

    pages = _walk(leads, [("region", True)], 3)

    assert pages == [["l1", "l3", "l5"], ["l0", "l2", "l4"], ["l6"]]
    assert "_cursor_0" not in paginate(leads, [], limit=1, cursor=None).items[0]


def test_nulls_sort_last_going_up_and_first_going_down():
    org = OrganizationFactory()
    stop_at = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    for n, stop in enumerate([stop_at, None, stop_at + dt.timedelta(days=1), None]):
        CampaignFactory(organization=org, name=f"c{n}", stop_at=stop)
    campaigns = Campaign.objects.filter(organization=org).values(external_id=F("name"))

    assert _walk(campaigns, [("stop_at", False)], 1) == [["c0"], ["c2"], ["c1"], ["c3"]]
    assert _walk(campaigns, [("stop_at", True)], 3) == [["c1", "c3", "c2"], ["c0"]]


def test_rows_inserted_between_pages_cause_no_duplicates_or_gaps():
    audience = AudienceFactory()
    for n in range(0, 20, 2):
        LeadFactory(audience=audience, external_id=f"{n:02d}")
    leads = Lead.objects.filter(audience=audience).values("external_id")
    order = [("external_id", False)]

    first = paginate(leads, order, limit=4, cursor=None)
    for n in range(1, 20, 2):  # interleaved with what was read and what was not
        LeadFactory(audience=audience, external_id=f"{n:02d}")
    rest, cursor = [], first.next
    while cursor:
        page = paginate(leads, order, limit=4, cursor=cursor)
        rest += [row["external_id"] for row in page.items]
        cursor = page.next

    seen = [row["external_id"] for row in first.items] + rest
    assert seen[:4] == ["00", "02", "04", "06"]
    # Every row after the first page's last one, new and old, each once, in order.
    assert rest == [f"{n:02d}" for n in range(7, 20)]
    assert len(seen) == len(set(seen))


def test_a_tampered_or_foreign_cursor_is_a_400():
    audience = AudienceFactory()
    LeadFactory.create_batch(3, audience=audience)
    leads = Lead.objects.filter(audience=audience).values("external_id")
    cursor = paginate(leads, [("external_id", False)], limit=1, cursor=None, scope="s1").next

    for order, scope, bad in [
        ([("external_id", False)], "s1", cursor[:-2] + "xx"),
        ([("external_id", True)], "s1", cursor),
        ([("external_id", False)], "s2", cursor),
        ([("external_id", False)], "s1", "not-a-cursor"),
    ]:
        with pytest.raises(BadRequest) as error:
            paginate(leads, order, limit=1, cursor=bad, scope=scope)
        assert str(error.value.detail).startswith("next: invalid cursor")
