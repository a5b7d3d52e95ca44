"""POST /api/v1/segments (seed 002): a partner creates an audience from its own persons."""

import copy

import orjson
import pytest
import yaml

from audiences.api.schema import SEED_SEGMENT_EXAMPLE
from audiences.models import Audience, Lead
from setter.services import create_api_key, revoke_api_key
from tests.factories import OrganizationFactory

URL = "/api/v1/segments"
UNAUTHORIZED = {"statusCode": 401, "message": "Unauthorized"}

# Seed 002's example as printed, including its typo ("TagId"; "string"): not JSON.
SEED_LITERAL_BODY = b"""{
  "name": "string",
  "description": "string",
  "broadcastMediumId": "string",
  "segmentType":"string",
  "TagId"; "string",
  "filters": [],
  "persons": [
    {
      "substitutionTags": [{"tag": "string","value": "string"}],
      "externalId": "uuid",
      "firstName": "string",
      "lastName": "string",
      "phone": "string",
      "email": "string"
    },
    {
      "externalId": "uuid",
      "firstName": "string",
      "lastName": "string",
      "phoneNumber": "string",
      "email": "string"
    }
  ]
}"""


@pytest.fixture
def organization(db):
    return OrganizationFactory()


@pytest.fixture
def api_key(organization):
    return create_api_key(organization, "CRM")[1]


@pytest.fixture
def post(client, api_key):
    def post(payload, headers=None):
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        headers = {"x-api-key": api_key} if headers is None else headers
        return client.post(URL, body, content_type="application/json", headers=headers)

    return post


def bad_request(message: str) -> dict:
    return {"statusCode": 400, "message": message, "error": "Bad Request"}


def test_the_seed_example_creates_an_audience_and_lists_its_persons(post, organization):
    response = post(SEED_SEGMENT_EXAMPLE)

    assert response.status_code == 200
    audience = Audience.objects.get()
    leads = list(audience.leads.order_by("row_number"))
    assert response.json() == {
        "data": {
            "id": str(audience.pk),
            "persons": [
                {"id": str(leads[0].pk), "externalId": "uuid", "email": "string"},
                {"id": str(leads[1].pk), "externalId": "uuid", "email": "string"},
            ],
        },
        "errorMessage": "",
    }
    assert (audience.organization, audience.source, audience.status) == (
        organization,
        Audience.Source.API,
        Audience.Status.READY,
    )
    assert (audience.name, audience.description) == ("string", "string")
    # "string" is no phone: stored, listed, never messaged.
    assert [(lead.phone_raw, lead.ingest_status) for lead in leads] == [
        ("string", Lead.IngestStatus.INVALID_PHONE),
        ("string", Lead.IngestStatus.INVALID_PHONE),
    ]
    assert [lead.variables for lead in leads] == [{"string": "string"}, {}]
    assert (audience.total_rows, audience.count_invalid_phone, audience.count_ok) == (2, 2, 0)


def test_the_seed_example_as_printed_is_not_json_and_says_where(post):
    response = post(SEED_LITERAL_BODY)

    assert response.status_code == 400
    body = response.json()
    assert body.keys() == {"statusCode", "message", "error"}
    assert (body["statusCode"], body["error"]) == (400, "Bad Request")
    assert body["message"].startswith("Malformed JSON: ")
    assert "line 6 column 10" in body["message"]
    assert not Audience.objects.exists()


def test_persons_follow_the_csv_ingest_rules(post):
    payload = {
        "name": "Spring buyers",
        "description": "From the CRM",
        "persons": [
            {
                "externalId": "c-1",
                "firstName": " Ana ",
                "lastName": "Silva",
                "phone": "+55 11 91234-5678",
                "email": "ana@example.com",
                "substitutionTags": [
                    {"tag": "coupon", "value": "SPRING20"},
                    {"tag": "n", "value": 3},
                ],
            },
            {"externalId": "c-2", "phoneNumber": "+44 7400 123456", "email": "bo@example.com"},
            {"externalId": "c-3", "phone": "(202) 555-0124"},
            {"externalId": "c-4", "phoneNumber": "+55 (11) 91234-5678"},
            {"externalId": "c-5", "phone": "12345"},
        ],
    }

    response = post(payload)

    assert response.status_code == 200
    persons = response.json()["data"]["persons"]
    assert [(p["externalId"], p["email"]) for p in persons] == [
        ("c-1", "ana@example.com"),
        ("c-2", "bo@example.com"),
        ("c-3", ""),
        ("c-4", ""),
        ("c-5", ""),
    ]
    leads = {lead.external_id: lead for lead in Lead.objects.all()}
    assert [persons_id["id"] for persons_id in persons] == [
        str(leads[f"c-{n}"].pk) for n in range(1, 6)
    ]
    assert [
        (lead.phone_e164, lead.ingest_status, lead.limited_reporting) for lead in leads.values()
    ] == [
        ("+5511912345678", "ok", False),
        ("+447400123456", "ok", True),
        ("+12025550124", "ineligible_geo", False),
        ("+5511912345678", "duplicate", False),
        ("", "invalid_phone", False),
    ]
    ana = leads["c-1"]
    assert (ana.first_name, ana.last_name) == ("Ana", "Silva")
    assert ana.variables == {"coupon": "SPRING20", "n": "3"}
    audience = ana.audience
    assert (audience.name, audience.description, audience.total_rows) == (
        "Spring buyers",
        "From the CRM",
        5,
    )
    counts = (
        audience.count_ok,
        audience.count_duplicate,
        audience.count_ineligible_geo,
        audience.count_invalid_phone,
        audience.count_limited_reporting,
    )
    assert counts == (2, 1, 1, 1, 1)


def test_a_bearer_key_works_too(post, api_key):
    response = post(SEED_SEGMENT_EXAMPLE, headers={"Authorization": f"Bearer {api_key}"})

    assert response.status_code == 200
    assert Audience.objects.count() == 1


def test_a_segment_without_persons_is_an_empty_ready_audience(post):
    response = post({"name": "Later"})

    assert response.status_code == 200
    assert response.json()["data"]["persons"] == []
    assert Audience.objects.get().status == Audience.Status.READY


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-api-key": ""},
        {"x-api-key": "sk_not_a_key"},
        {"Authorization": "Bearer sk_not_a_key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
    ids=["missing", "empty", "wrong", "wrong-bearer", "not-bearer"],
)
def test_without_a_valid_key_the_answer_is_401_and_nothing_is_stored(post, headers):
    response = post(SEED_SEGMENT_EXAMPLE, headers=headers)

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert not Audience.objects.exists()


def test_a_revoked_key_is_401(post, organization):
    api_key, raw_key = create_api_key(organization, "old")
    revoke_api_key(api_key)

    response = post(SEED_SEGMENT_EXAMPLE, headers={"x-api-key": raw_key})

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert not Audience.objects.exists()


def _with(**changes) -> dict:
    payload = copy.deepcopy(SEED_SEGMENT_EXAMPLE)
    payload.update(changes)
    return payload


def _person_without_phone() -> dict:
    payload = _with()
    del payload["persons"][1]["phoneNumber"]
    return payload


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([SEED_SEGMENT_EXAMPLE], "body: expected a JSON object"),
        (_with(name=None), "name: required"),
        (_with(name="  "), "name: required"),
        (_with(name=7), "name: expected a string"),
        (_with(persons={"phone": "+447400123456"}), "persons: expected a list of person objects"),
        (_person_without_phone(), "persons[1].phone: required (phone or phoneNumber)"),
        (_with(persons=["+447400123456"]), "persons[0]: expected an object"),
        (
            _with(persons=[{"phone": "+447400123456", "substitutionTags": [{"value": "x"}]}]),
            "persons[0].substitutionTags[0].tag: required",
        ),
        (
            _with(persons=[{"phone": "+447400123456", "externalId": "x" * 256}]),
            "persons[0].externalId: at most 255 characters, got 256",
        ),
        (
            _with(name="", persons=[{"phone": 447400123456}]),
            "name: required; persons[0].phone: expected a string",
        ),
        (
            _with(persons=[{"phone": "+447400123456"}] * 10_001),
            "persons: at most 10,000 per call, got 10,001",
        ),
    ],
    ids=[
        "not-an-object",
        "name-null",
        "name-blank",
        "name-not-string",
        "persons-not-list",
        "person-without-phone",
        "person-not-object",
        "tag-without-name",
        "external-id-too-long",
        "several-errors",
        "too-many-persons",
    ],
)
def test_an_invalid_body_is_400_saying_where_and_stores_nothing(post, payload, message):
    response = post(payload)

    assert response.status_code == 400
    assert response.json() == bad_request(message)
    assert not Audience.objects.exists()
    assert not Lead.objects.exists()


def test_the_audience_belongs_to_the_key_organization_only(post, organization):
    other = OrganizationFactory()
    create_api_key(other, "their CRM")

    response = post(SEED_SEGMENT_EXAMPLE)

    audience = Audience.objects.get(pk=response.json()["data"]["id"])
    assert audience.organization == organization
    assert set(Lead.objects.values_list("organization", flat=True)) == {organization.pk}
    assert not Audience.objects.filter(organization=other).exists()


def test_the_schema_documents_the_segment_api_with_the_seed_example(client):
    schema = yaml.safe_load(client.get("/api/schema/").content)

    operation = schema["paths"]["/api/v1/segments"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    assert examples["SeedExample"]["value"] == SEED_SEGMENT_EXAMPLE
    assert set(operation["responses"]) == {"200", "400", "401", "409"}
    assert operation["security"] == [{"xApiKey": []}, {"bearerApiKey": []}]
    assert schema["components"]["securitySchemes"]["xApiKey"]["name"] == "x-api-key"


def test_a_bad_key_is_401_even_with_a_malformed_body(post):
    response = post(SEED_LITERAL_BODY, headers={"x-api-key": "sk_not_a_key"})

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
