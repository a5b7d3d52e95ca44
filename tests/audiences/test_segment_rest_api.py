"""Seed 003's segment operations over REST: get, update, delete, targets, queries."""

import datetime as dt

import orjson
import pytest
import yaml

from audiences import segments
from audiences.models import Audience, Lead
from campaigns.models import Campaign
from setter.services import create_api_key
from tests.factories import AudienceFactory, CampaignFactory, LeadFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

TODAY = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)


@pytest.fixture
def org():
    return OrganizationFactory()


@pytest.fixture
def api(client, org):
    """call(method, path, body) with the organization's key; answers (status, json)."""
    key = create_api_key(org, "CRM")[1]

    def call(method, path, body=None):
        response = getattr(client, method)(
            f"/api/v1/{path}",
            orjson.dumps(body) if body is not None else None,
            content_type="application/json",
            headers={"x-api-key": key},
        )
        return response.status_code, (response.json() if response.content else None)

    return call


@pytest.fixture
def crm(org):
    """An uploaded audience of 25 leads, crm-00 … crm-24, in id order."""
    audience = AudienceFactory(organization=org, source=Audience.Source.CSV, size=25)
    for n in range(25):
        LeadFactory(audience=audience, external_id=f"crm-{n:02d}", region="GB" if n % 5 else "IE")
    return audience


def ids(audience) -> list[str]:
    return [str(pk) for pk in audience.leads.order_by("pk").values_list("pk", flat=True)]


def error(status: int, message: str) -> dict:
    phrases = {400: "Bad Request", 404: "Not Found", 409: "Conflict"}
    return {"statusCode": status, "message": message, "error": phrases[status]}


def test_a_dynamic_segment_is_created_from_seed_003s_filter(api, crm):
    status, body = api("post", "segments", {
        "name": "New App Users Segment",
        "filter": {"created_at": {"$gte": "2020-01-01T00:00:00Z"}},
    })  # fmt: skip

    assert status == 200
    segment = body["segment"]
    assert body["data"] == {"id": segment["id"], "persons": []}
    assert body["errorMessage"] == ""
    assert {k: segment[k] for k in ("type", "kind", "filter", "allUsers", "status")} == {
        "type": "user",
        "kind": "dynamic",
        "filter": {"created_at": {"$gte": "2020-01-01T00:00:00Z"}},
        "allUsers": False,
        "status": "ready",
    }
    status, everyone = api("post", "segments", {"name": "everyone", "all_users": True})
    assert (status, everyone["segment"]["allUsers"]) == (200, True)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "x", "filter": {"team": "commonteam"}}, "filter.team: unknown field"),
        ({"name": "x", "filter": {"country": "GB"}, "allUsers": True}, "filter: not with allUsers"),
        ({"name": "x", "allUsers": "yes"}, "allUsers: expected true or false"),
        ({"name": "x", "filter": []}, "filter: expected a non-empty object"),
        (
            {"name": "x", "filter": {"country": "GB"}, "persons": [{"phone": "+447400123456"}]},
            "persons: not with filter or allUsers",
        ),
    ],
)
def test_a_bad_dynamic_segment_is_a_400_saying_where(api, body, message):
    status, answer = api("post", "segments", body)

    assert status == 400
    assert answer["message"].startswith(message)
    assert not Audience.objects.exists()


def test_get_update_and_delete_a_segment(api, org):
    segment = segments.create_segment(org, name="Ireland", filter={"country": "IE"})
    path = f"segments/{segment.pk}"

    status, body = api("get", path)
    assert status == 200
    assert body["segment"]["id"] == str(segment.pk)
    assert set(body["segment"]) == {
        "id", "type", "kind", "name", "description", "filter", "allUsers", "size", "status",
        "createdAt", "updatedAt",
    }  # fmt: skip

    status, body = api("patch", path, {"name": "Everyone", "allUsers": True})
    assert status == 200
    assert (body["segment"]["name"], body["segment"]["filter"], body["segment"]["allUsers"]) == (
        "Everyone",
        None,
        True,
    )
    assert api("patch", path, {"filter": {"colour": 1}})[1]["message"].startswith(
        "filter.colour: unknown field"
    )
    assert api("patch", path, {"size": 3}) == (
        400,
        error(400, "size: unknown key (expected name, description, filter, allUsers, all_users)"),
    )

    assert api("delete", path) == (200, {"id": str(segment.pk), "deleted": True})
    assert api("get", path) == (404, error(404, f"segment {segment.pk} not found"))


def test_an_explicit_segment_takes_no_filter_and_an_active_campaigns_segment_stays(api, org, crm):
    campaign = CampaignFactory(organization=org, status=Campaign.Status.RUNNING)
    campaign.audiences.set([crm])

    status, body = api("patch", f"segments/{crm.pk}", {"filter": {"country": "IE"}})
    assert (status, body["error"]) == (409, "Conflict")
    status, body = api("delete", f"segments/{crm.pk}")
    assert (status, body["error"]) == (409, "Conflict")
    assert "scheduled, running or paused" in body["message"]


def test_targets_are_added_checked_and_removed(api, org, crm):
    status, body = api("post", "segments", {"name": "VIP"})  # seed 002 without persons
    segment = body["data"]["id"]
    lead_ids = ids(crm)

    assert api("post", f"segments/{segment}/targets", {"targetIds": lead_ids[:3]}) == (
        200,
        {"added": 3, "size": 3},
    )
    assert api("post", f"segments/{segment}/targets", {"targetIds": lead_ids[2:5]}) == (
        200,
        {"added": 2, "size": 5},
    )
    assert api("get", f"segments/{segment}/targets/{lead_ids[4]}") == (200, {"exists": True})
    assert api("get", f"segments/{segment}/targets/{lead_ids[5]}") == (
        404,
        error(404, f"target {lead_ids[5]} is not in segment {segment}"),
    )
    assert api("get", f"segments/{segment}/targets/nope")[0] == 404

    removed = api("post", f"segments/{segment}/targets/remove", {"targetIds": lead_ids[4:7]})
    assert removed == (200, {"removed": 1, "size": 4})
    assert Lead.objects.filter(audience=crm).count() == 25


def test_adding_another_organizations_lead_is_refused_and_adds_nothing(api, org, crm):
    segment = segments.create_segment(org, name="VIP")
    foreign = LeadFactory()

    status, body = api(
        "post", f"segments/{segment.pk}/targets", {"targetIds": [ids(crm)[0], str(foreign.pk)]}
    )

    assert (status, body) == (
        400,
        error(400, f"targetIds: unknown targets (no such lead in this organization): {foreign.pk}"),
    )
    assert api("get", f"segments/{segment.pk}")[1]["segment"]["size"] == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "targetIds: expected a list of target ids"),
        ({"targetIds": ["12", "x"]}, "targetIds[1]: expected an id"),
        ({"targetIds": ["1"] * 10_001}, "targetIds: at most 10,000 per call, got 10,001"),
    ],
)
def test_a_bad_targets_body_is_a_400(api, org, body, message):
    segment = segments.create_segment(org, name="VIP")

    status, answer = api("post", f"segments/{segment.pk}/targets", body)

    assert status == 400
    assert answer["message"].startswith(message)


def walk(api, path, body, limit, cursor=None):
    """Follow next through every page; each page's targets' external ids."""
    pages = []
    while True:
        status, answer = api("post", path, {**body, "limit": limit, "next": cursor})
        assert status == 200, answer
        pages.append([target["externalId"] for target in answer["targets"]])
        cursor = answer["next"]
        if cursor is None:
            return pages


def test_targets_are_queried_by_id_ascending_across_pages(api, org, crm):
    segment = segments.create_segment(org, name="VIP")
    segments.add_targets(segment, [int(pk) for pk in ids(crm)])
    path = f"segments/{segment.pk}/targets/query"

    pages = walk(api, path, {}, 10)

    assert pages == [
        [f"crm-{n:02d}" for n in range(0, 10)],
        [f"crm-{n:02d}" for n in range(10, 20)],
        [f"crm-{n:02d}" for n in range(20, 25)],
    ]
    status, body = api("post", path, {"limit": 1})
    first = Lead.objects.get(external_id="crm-00")
    assert body["targets"] == [
        {
            "region": "IE",
            "email": "",
            "variables": {},
            "targetId": str(first.pk),
            "externalId": "crm-00",
            "phone": first.phone_e164,
            "firstName": "",
            "lastName": "",
            "status": "ok",
            "limitedReporting": False,
            "timeZone": "",
            "createdAt": body["targets"][0]["createdAt"],
        }
    ]
    assert body["targets"][0]["createdAt"].endswith("Z")


def test_the_seed_query_filters_and_sorts_targets_descending(api, org, crm):
    segment = segments.create_segment(org, name="VIP")
    lead_ids = ids(crm)
    segments.add_targets(segment, [int(pk) for pk in lead_ids])

    pages = walk(
        api,
        f"segments/{segment.pk}/targets/query",
        {
            "filter": {"target_id": {"$gte": lead_ids[15]}, "region": "GB"},
            "sort": [{"field": "target_id", "direction": -1}],
        },
        3,
    )

    assert pages == [
        ["crm-24", "crm-23", "crm-22"],
        ["crm-21", "crm-19", "crm-18"],
        ["crm-17", "crm-16"],
    ]


def test_targets_added_between_pages_are_neither_repeated_nor_skipped(api, org, crm):
    segment = segments.create_segment(org, name="VIP")
    lead_ids = ids(crm)
    evens, odds = lead_ids[0::2], lead_ids[1::2]
    segments.add_targets(segment, [int(pk) for pk in evens])
    path = f"segments/{segment.pk}/targets/query"

    status, first = api("post", path, {"limit": 5})
    segments.add_targets(segment, [int(pk) for pk in odds])
    rest = walk(api, path, {}, 5, cursor=first["next"])

    seen = [t["externalId"] for t in first["targets"]] + [e for page in rest for e in page]
    assert seen[:5] == ["crm-00", "crm-02", "crm-04", "crm-06", "crm-08"]
    assert seen[5:] == [f"crm-{n:02d}" for n in range(9, 25)]
    assert len(seen) == len(set(seen))


def test_a_dynamic_segments_targets_are_its_filters_leads(api, org, crm):
    segment = segments.create_segment(org, name="Ireland", filter={"country": "IE"})

    pages = walk(api, f"segments/{segment.pk}/targets/query", {}, 100)

    assert pages == [["crm-00", "crm-05", "crm-10", "crm-15", "crm-20"]]
    status, body = api("post", f"segments/{segment.pk}/targets", {"targetIds": ids(crm)[:1]})
    assert (status, body["error"]) == (409, "Conflict")


def test_a_bad_or_replayed_cursor_is_a_400(api, org, crm):
    first, second = (segments.create_segment(org, name=n, all_leads=True) for n in "ab")
    status, page = api("post", f"segments/{first.pk}/targets/query", {"limit": 2})

    for path, body in [
        (f"segments/{first.pk}/targets/query", {"next": page["next"] + "x"}),
        (f"segments/{second.pk}/targets/query", {"next": page["next"]}),
        (
            f"segments/{first.pk}/targets/query",
            {"next": page["next"], "sort": [{"field": "phone"}]},
        ),
    ]:
        status, answer = api("post", path, body)
        assert status == 400
        assert answer["message"].startswith("next: invalid cursor")


def test_segments_are_queried_with_filter_sort_and_pages(api, org, crm):
    for n in range(5):
        segments.create_segment(org, name=f"dyn-{n}", filter={"region": "GB"})
    segments.create_segment(org, name="hidden", hidden=True)
    AudienceFactory(name="other org")
    for n, audience in enumerate(Audience.objects.order_by("pk")):
        Audience.objects.filter(pk=audience.pk).update(created_at=TODAY + dt.timedelta(hours=n))
    query = {
        "filter": {"kind": {"$in": ["dynamic", "csv"]}, "name": {"$ne": "dyn-2"}},
        "sort": [{"field": "created_at", "direction": -1}],
        "limit": 3,
    }

    status, first = api("post", "segments/query", query)
    status, second = api("post", "segments/query", {**query, "next": first["next"]})

    assert [s["name"] for s in first["segments"]] == ["dyn-4", "dyn-3", "dyn-1"]
    assert [s["name"] for s in second["segments"]] == ["dyn-0", crm.name]
    assert second["next"] is None
    assert api("post", "segments/query", {"filter": {"kind": "channel"}})[1]["message"] == (
        "filter.kind: unknown value 'channel' (expected one of csv, persons, targets, dynamic)"
    )


OTHER_ORG_CALLS = [
    ("get", "segments/{id}", None),
    ("patch", "segments/{id}", {"name": "mine now"}),
    ("delete", "segments/{id}", None),
    ("post", "segments/{id}/targets", {"targetIds": []}),
    ("post", "segments/{id}/targets/remove", {"targetIds": []}),
    ("get", "segments/{id}/targets/{lead}", None),
    ("post", "segments/{id}/targets/query", {}),
]


@pytest.mark.parametrize(("method", "path", "body"), OTHER_ORG_CALLS)
def test_another_organizations_segment_is_a_404(api, method, path, body):
    theirs = AudienceFactory(name="theirs")
    lead = LeadFactory(audience=theirs)

    status, answer = api(method, path.format(id=theirs.pk, lead=lead.pk), body)

    assert (status, answer) == (404, error(404, f"segment {theirs.pk} not found"))
    theirs.refresh_from_db()
    assert theirs.name == "theirs"


def test_another_organizations_segments_are_not_listed(api):
    AudienceFactory(name="theirs")

    assert api("post", "segments/query", {}) == (200, {"segments": [], "next": None, "prev": None})


def test_the_schema_documents_every_segment_operation(client):
    schema = yaml.safe_load(client.get("/api/schema/").content)
    paths = schema["paths"]

    operations = {
        ("/api/v1/segments/{segment_id}", "get"): "get_segment",
        ("/api/v1/segments/{segment_id}", "patch"): "update_segment",
        ("/api/v1/segments/{segment_id}", "delete"): "delete_segment",
        ("/api/v1/segments/{segment_id}/targets", "post"): "add_segment_targets",
        ("/api/v1/segments/{segment_id}/targets/remove", "post"): "remove_segment_targets",
        ("/api/v1/segments/{segment_id}/targets/{target_id}", "get"): "segment_target_exists",
        ("/api/v1/segments/{segment_id}/targets/query", "post"): "query_segment_targets",
        ("/api/v1/segments/query", "post"): "query_segments",
    }
    for (path, method), operation_id in operations.items():
        operation = paths[path][method]
        assert operation["operationId"] == operation_id
        assert {"200", "401", "404"} <= set(operation["responses"])
        assert operation["security"] == [{"xApiKey": []}, {"bearerApiKey": []}]
