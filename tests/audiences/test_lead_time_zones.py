"""A lead's time zone at ingest (issue 16.1): an optional time_zone column, an IANA name
honoured exactly or the row refused with its reason, and the phone's zones read once."""

import orjson
import pytest

from audiences import services
from audiences.models import Lead
from setter.services import create_api_key
from tests.factories import OrganizationFactory

from .helpers import csv_bytes, upload

pytestmark = pytest.mark.django_db


def test_the_time_zone_column_is_the_leads_zone_and_a_wrong_one_rejects_the_row():
    content = csv_bytes(
        ["phone", "first_name", "Time Zone"],
        [
            ["+44 7400 123456", "Ana", "Asia/Tokyo"],
            ["+44 7400 123457", "Bo", "america/new_york"],  # any letter case: the IANA name
            ["+44 7400 123458", "Cy", ""],
            ["+44 7400 123459", "Di", "Europe/Londn"],
            ["+44 7400 123460", "Ed", "GMT+2"],
        ],
    )
    audience = services.ingest_audience(upload(OrganizationFactory(), content).pk)

    rows = list(
        audience.leads.order_by("row_number").values_list(
            "first_name", "time_zone", "ingest_status", "reject_reason", "variables"
        )
    )
    unknown = "unknown time zone {!r}: use an IANA name such as Europe/London"
    assert rows == [
        ("Ana", "Asia/Tokyo", "ok", "", {}),
        ("Bo", "America/New_York", "ok", "", {}),
        ("Cy", "", "ok", "", {}),
        ("Di", "", "invalid_time_zone", unknown.format("Europe/Londn"), {}),
        ("Ed", "", "invalid_time_zone", unknown.format("GMT+2"), {}),
    ]
    assert (audience.count_ok, audience.count_invalid_time_zone) == (3, 2)


@pytest.mark.parametrize(
    ("phone", "zone", "zones"),
    [
        ("+1 415 555 0123", "America/Los_Angeles", ""),
        ("+91 98123 45678", "Asia/Calcutta", ""),
        # Several zones: all are kept (the send's own zone may pick one), Sydney the main.
        ("+61 412 345 678", "Australia/Sydney", "Australia/Adelaide Australia/Brisbane"),
        ("not a phone", "", ""),
    ],
)
def test_the_phones_zones_are_stored_with_the_lead(phone, zone, zones):
    content = csv_bytes(["phone"], [[phone]])
    audience = services.ingest_audience(upload(OrganizationFactory(), content).pk)

    lead = audience.leads.get()
    assert lead.phone_zone == zone
    assert lead.phone_zones.startswith(zones)


@pytest.mark.parametrize("processes", [1, 2])
def test_parser_processes_read_the_zones_the_same_way(settings, processes):
    settings.AUDIENCE_INGEST_PROCESSES = processes
    settings.AUDIENCE_INGEST_BATCH_SIZE = 2
    phones = ["+1 212 555 0123", "+61 412 345 678", "+44 7400 123456", "+55 11 98765 4321"]
    content = csv_bytes(
        ["phone", "tz"], [[p, "Asia/Tokyo" if n % 2 else ""] for n, p in enumerate(phones)]
    )
    audience = services.ingest_audience(upload(OrganizationFactory(), content).pk)

    assert list(
        Lead.objects.filter(audience=audience)
        .order_by("row_number")
        .values_list("time_zone", "phone_zone")
    ) == [
        ("", "America/New_York"),
        ("Asia/Tokyo", "Australia/Sydney"),
        ("", "Europe/London"),
        ("Asia/Tokyo", "America/Sao_Paulo"),
    ]


def segments_api(client, organization):
    key = create_api_key(organization, "CRM")[1]

    def post(body):
        response = client.post(
            "/api/v1/segments",
            orjson.dumps(body),
            content_type="application/json",
            headers={"x-api-key": key},
        )
        return response.status_code, response.json()

    return post


def test_a_persons_time_zone_is_its_leads_and_an_unknown_one_is_a_400(client):
    organization = OrganizationFactory()
    post = segments_api(client, organization)

    status, body = post(
        {
            "name": "VIP",
            "persons": [
                {"phone": "+447400123456"},
                {"phone": "+447400123457", "timeZone": "Europe/Lisbon"},
            ],
        }
    )
    assert status == 200, body
    assert list(Lead.objects.order_by("row_number").values_list("time_zone", flat=True)) == [
        "",
        "Europe/Lisbon",
    ]

    status, body = post(
        {"name": "Bad", "persons": [{"phone": "+447400123458", "timeZone": "Mars/Base"}]}
    )
    assert status == 400
    assert "persons[0].timeZone" in body["message"]
    assert "not an IANA time zone" in body["message"]
    assert Lead.objects.count() == 2
