"""CSV ingest: each row's status and reason, variables, counts, rejects, bad files."""

import csv
import io
import random
import re

import pytest

from audiences import selectors, services
from audiences.models import Audience, Lead
from tests.factories import LeadFactory, OrganizationFactory

from .helpers import MIXED_ROWS, csv_bytes, mixed_csv, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return OrganizationFactory()


def test_a_mixed_file_gets_a_status_per_row_and_counts(org):
    audience = services.ingest_audience(upload(org, mixed_csv()).pk)

    assert audience.status == Audience.Status.READY
    assert audience.error == ""
    assert audience.total_rows == len(MIXED_ROWS)
    assert audience.processed_bytes == audience.total_bytes > 0
    leads = {lead.external_id: lead for lead in audience.leads.all()}
    for n, (external_id, phone, status, e164, region, limited) in enumerate(MIXED_ROWS, 1):
        lead = leads[external_id]
        assert lead.row_number == n
        assert lead.phone_raw == phone
        assert (lead.ingest_status, lead.phone_e164, lead.region) == (status, e164, region)
        assert lead.limited_reporting is limited
        assert lead.organization_id == org.pk
        assert (lead.first_name, lead.last_name, lead.email) == (
            f"First{n}",
            f"Last{n}",
            f"lead{n}@example.com",
        )
        assert lead.variables == {"city": "São Paulo", "plan": "pro"}
    assert selectors.audience_counts(audience) == {
        "ok": 6,
        "invalid_phone": 2,
        "duplicate": 2,
        "ineligible_geo": 1,
        "invalid_time_zone": 0,
        "limited_reporting": 3,
    }


def test_rejected_rows_carry_a_reason(org):
    audience = services.ingest_audience(upload(org, mixed_csv()).pk)
    reasons = dict(audience.leads.values_list("external_id", "reject_reason"))

    assert reasons["c-1"] == ""
    assert reasons["c-6"] == "not a valid BR phone number: '12345' (too short)"
    assert reasons["c-7"] == "missing phone number"
    assert reasons["c-8"] == "same phone as row 1"
    assert reasons["c-10"] == "same phone as row 5"
    assert "error 131049" in reasons["c-5"]


def test_the_rejects_report_lists_every_row_that_is_not_ok(org):
    audience = services.ingest_audience(upload(org, mixed_csv()).pk)

    report = list(csv.reader(io.StringIO("".join(selectors.rejected_leads_csv(audience)))))

    assert report[0] == [*selectors.REJECT_COLUMNS, "city", "plan"]
    by_row = {int(line[0]): line for line in report[1:]}
    assert sorted(by_row) == [5, 6, 7, 8, 10]
    assert by_row[6] == [
        "6",
        "12345",
        "invalid_phone",
        "not a valid BR phone number: '12345' (too short)",
        "c-6",
        "First6",
        "Last6",
        "lead6@example.com",
        "São Paulo",
        "pro",
    ]
    assert by_row[8][2:4] == ["duplicate", "same phone as row 1"]
    assert by_row[5][2] == "ineligible_geo"


def test_the_rejects_report_of_a_clean_audience_is_a_header(org):
    content = csv_bytes(["phone"], [["+44 7400 123456"]])
    audience = services.ingest_audience(upload(org, content).pk)

    assert list(selectors.rejected_leads_csv(audience)) == [
        ",".join(selectors.REJECT_COLUMNS) + "\r\n"
    ]


def test_the_marketer_can_name_the_phone_column(org):
    content = csv_bytes(
        ["name", "phone", "Cell (WhatsApp)"], [["Ana", "office", "+44 7400 123456"]]
    )
    audience = services.ingest_audience(upload(org, content, phone_column="cell (whatsapp)").pk)

    lead = audience.leads.get()
    assert (lead.phone_e164, lead.ingest_status) == ("+447400123456", "ok")
    assert lead.variables == {"name": "Ana", "phone": "office"}


def test_numbers_without_a_country_code_use_the_upload_region(org):
    content = csv_bytes(["whatsapp"], [["07400 123457"], ["(202) 555-0124"]])

    as_gb = services.ingest_audience(upload(org, content, default_region="GB").pk)
    as_us = services.ingest_audience(upload(org, content, default_region="US").pk)

    assert list(as_gb.leads.values_list("phone_e164", "ingest_status")) == [
        ("+447400123457", "ok"),
        ("", "invalid_phone"),
    ]
    assert list(as_us.leads.values_list("phone_e164", "ingest_status")) == [
        ("", "invalid_phone"),
        ("+12025550124", "ineligible_geo"),
    ]


def test_semicolon_files_with_a_bom_and_blank_lines_are_read(org):
    content = "\ufeffPhone;Vorname;Stadt\r\n+49 151 23456789;Jörg;Köln\r\n\r\n+33 6 12 34 56 78;Zoé;Lyon\r\n"
    audience = services.ingest_audience(upload(org, content.encode()).pk)

    assert audience.total_rows == 2
    assert list(audience.leads.values_list("row_number", "phone_e164", "variables")) == [
        (1, "+4915123456789", {"Vorname": "Jörg", "Stadt": "Köln"}),
        (2, "+33612345678", {"Vorname": "Zoé", "Stadt": "Lyon"}),
    ]


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"", "The file is empty."),
        (b"\r\n\r\n", "The file is empty."),
        (b"phone,name\r\n", "The file has a header row but no data rows."),
        (
            b"name,email\r\nAna,ana@example.com\r\n",
            "The file has no phone column: looked for phonee164, e164, phone,",
        ),
        (
            b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00",
            "This is not a CSV file: it contains binary data. It looks like an Excel",
        ),
        (
            b"phone,name\r\n+447400123456,Jos\xe9\r\n",
            "The file is not UTF-8 text (undecodable bytes near the start of the file).",
        ),
    ],
    ids=["empty", "blank-lines", "header-only", "no-phone-column", "xlsx", "latin-1"],
)
def test_a_bad_file_fails_with_a_clear_error_and_no_leads(org, content, error):
    audience = services.ingest_audience(upload(org, content).pk)

    assert audience.status == Audience.Status.FAILED
    assert audience.error.startswith(error)
    assert audience.leads.count() == 0
    assert audience.total_rows == audience.count_ok == 0


def test_undecodable_bytes_deep_in_a_file_leave_no_half_ingested_audience(org, settings):
    settings.AUDIENCE_INGEST_BATCH_SIZE = 100
    rows = [[f"+44 7400 {n:06d}"] for n in range(5000)]
    content = csv_bytes(["phone"], rows) + b"+447400999999\xff\xfe\r\n"
    audience = services.ingest_audience(upload(org, content).pk)

    assert audience.status == Audience.Status.FAILED
    near_row = int(re.search(r"near row (\d+)", audience.error)[1])
    assert 4500 < near_row <= 5001
    assert audience.leads.count() == 0


def test_a_named_phone_column_that_is_missing_names_the_headers(org):
    content = csv_bytes(["name", "mobile"], [["Ana", "+44 7400 123456"]])
    audience = services.ingest_audience(upload(org, content, phone_column="cell").pk)

    assert audience.status == Audience.Status.FAILED
    assert audience.error == "The file has no column named 'cell': its headers are name, mobile."


def test_a_rerun_after_a_crash_starts_over(org):
    """A redelivered task finds the leads of the run that died and replaces them."""
    audience = upload(org, mixed_csv())
    Audience.objects.filter(pk=audience.pk).update(status=Audience.Status.INGESTING)
    LeadFactory.create_batch(3, audience=audience)

    audience = services.ingest_audience(audience.pk)

    assert audience.status == Audience.Status.READY
    assert audience.leads.count() == len(MIXED_ROWS)
    assert audience.count_duplicate == 2


def test_a_finished_audience_is_not_ingested_again(org):
    audience = services.ingest_audience(upload(org, mixed_csv()).pk)
    Lead.objects.filter(audience=audience, row_number=1).update(first_name="Edited")

    assert services.ingest_audience(audience.pk).status == Audience.Status.READY
    assert audience.leads.get(row_number=1).first_name == "Edited"


def test_an_unknown_default_region_is_refused(org):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        upload(org, mixed_csv(), default_region="XX")
    assert not Audience.objects.exists()


def test_progress_is_reported_as_bytes_read(org, settings):
    settings.AUDIENCE_INGEST_BATCH_SIZE = 50
    content = csv_bytes(["phone"], [[f"+44 7400 {n:06d}"] for n in range(1000)])
    seen = []

    audience = upload(org, content)
    services.ingest_audience(audience.pk, progress=lambda done, total: seen.append((done, total)))

    assert len(seen) == 20
    assert all(total == len(content) for _, total in seen)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert seen[-1][0] == len(content)


def test_parser_processes_give_the_same_leads_as_one_process(org, settings):
    """Large files are parsed by a pool of processes; results must not depend on it."""
    rng = random.Random(7)
    phones = [f"+44 7400 {rng.randint(0, 999999):06d}" for _ in range(3000)]
    phones += [rng.choice(phones) for _ in range(300)] + ["12345", "+1 202-555-0123"] * 50
    rng.shuffle(phones)
    rows = [[phone, f"crm-{n}", "x\ty", 'quote " and, comma'] for n, phone in enumerate(phones)]
    content = csv_bytes(["phone", "external_id", "tabbed", "quoted"], rows)
    settings.AUDIENCE_INGEST_BATCH_SIZE = 250

    settings.AUDIENCE_INGEST_PROCESSES = 1
    alone = services.ingest_audience(upload(org, content).pk)
    settings.AUDIENCE_INGEST_PROCESSES = 2
    settings.AUDIENCE_INGEST_PARALLEL_MIN_BYTES = 0
    pooled = services.ingest_audience(upload(org, content).pk)

    fields = ["row_number", "external_id", "phone_e164", "ingest_status", "reject_reason"]
    fields += ["variables", "limited_reporting"]
    assert alone.status == pooled.status == Audience.Status.READY
    assert list(alone.leads.values_list(*fields)) == list(pooled.leads.values_list(*fields))
    assert selectors.audience_counts(alone) == selectors.audience_counts(pooled)
    assert pooled.leads.get(row_number=1).variables["tabbed"] == "x\ty"
