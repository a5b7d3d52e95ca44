"""Phone normalisation never moves a number to another country (issue 11, points 1 and 2).

Real national formats of six regions: valid, invalid area code, too short, too long, the
same number written as international digits, and the reading that would move it abroad.
"""

import pytest

from audiences import services
from setter.phones import canonical_or_normalized, normalize_phone
from tests.factories import OrganizationFactory

from .helpers import csv_bytes, upload

INVALID = "(no such area code or number range)"

# (default region, as written, E.164 or "" when invalid, the reason's ending when invalid)
TABLE = [
    ("BR", "(11) 91234-5678", "+5511912345678", ""),
    ("BR", "11 91234-5678", "+5511912345678", ""),
    ("BR", "(20) 97200-5463", "", INVALID),  # DDD 20 does not exist; not +20 Egypt
    ("BR", "(56) 99876-5432", "", INVALID),  # DDD 56 does not exist; not +56 Chile
    ("BR", "(11) 91234-56789", "", "(too long)"),
    ("BR", "(11) 9123-456", "", INVALID),
    ("BR", "5511912345678", "+5511912345678", ""),
    ("GB", "07400 123456", "+447400123456", ""),
    ("GB", "020 7946 0123", "+442079460123", ""),
    ("GB", "20 7946 0123", "+442079460123", ""),  # London, not +20 Egypt
    ("GB", "0999 123 4567", "", INVALID),
    ("GB", "07400 12345", "", INVALID),
    ("GB", "07400 1234567", "", "(too long)"),
    ("GB", "447400123456", "+447400123456", ""),
    ("GB", "5511912345678", "+5511912345678", ""),
    ("DE", "030 12345678", "+493012345678", ""),
    ("DE", "0151 23456789", "+4915123456789", ""),
    ("DE", "15123456789", "+4915123456789", ""),  # a German mobile, not +1 512 Austin
    ("DE", "(0999) 12345678", "", INVALID),
    ("DE", "0151 2", "", INVALID),
    ("DE", "(0151) 2345678901234", "", "(too long)"),
    ("IN", "98765 43210", "+919876543210", ""),
    ("IN", "098765 43210", "+919876543210", ""),
    ("IN", "55555 55555", "", INVALID),
    ("IN", "98765 4321", "", INVALID),  # not +98 Iran
    ("IN", "98765 432101", "", INVALID),
    ("IN", "919876543210", "+919876543210", ""),
    ("US", "(202) 555-0143", "+12025550143", ""),
    ("US", "(099) 555-0143", "", INVALID),
    ("US", "(44) 7400 123456", "", "(too long)"),  # brackets are national: not +44
    ("US", "(202) 555-014", "", "(too short)"),
    ("US", "(202) 555-01432", "", "(too long)"),
    ("US", "5511912345678", "+5511912345678", ""),
    ("MX", "55 1234 5678", "+525512345678", ""),
    ("MX", "(33) 1234 5678", "+523312345678", ""),
    ("MX", "(10) 1234 5678", "", INVALID),
    ("MX", "55 1234 567", "", "(too short)"),  # not +55 Brazil
    ("MX", "(55) 1234 56789", "", "(too long)"),
    ("MX", "525512345678", "+525512345678", ""),
]


@pytest.mark.parametrize(("region", "written", "e164", "reason"), TABLE)
def test_national_formats_are_read_for_their_region_only(region, written, e164, reason):
    phone = normalize_phone(written, region)

    assert phone.e164 == e164
    if e164:
        assert phone.error == ""
    else:
        assert phone.error.startswith(f"not a valid {region} phone number: {written!r}")
        assert phone.error.endswith(reason)


@pytest.mark.parametrize(
    ("region", "written", "country_code"),
    [
        ("BR", "(20) 97200-5463", "+55"),
        ("BR", "(56) 99876-5432", "+55"),
        ("GB", "20 7946 0123", "+44"),
        ("DE", "15123456789", "+49"),
        ("IN", "98765 4321", "+91"),
        ("US", "(44) 7400 1234", "+1"),
        ("CA", "4165550100", "+1"),  # a region sharing its country code: still national
        ("JE", "7797 123456", "+44"),
    ],
)
def test_partner_payloads_never_reread_a_national_number_as_another_country(
    region, written, country_code
):
    """The lenient reading (lead events, filters) keeps the region too, or gives nothing."""
    phone = canonical_or_normalized(written, region)

    assert phone == "" or phone.startswith(country_code)


@pytest.mark.parametrize(
    ("region", "written", "e164"),
    [("US", "15551234567", "+15551234567"), ("GB", "15551234567", "+15551234567")],
)
def test_digits_that_cannot_be_national_are_read_as_international(region, written, e164):
    assert canonical_or_normalized(written, region) == e164


@pytest.mark.parametrize(
    ("written", "region"),
    [
        ("+44 7781 123456", "GG"),
        ("+44 7797 123456", "JE"),
        ("+44 7624 123456", "IM"),
        ("+44 7400 123456", "GB"),
    ],
)
def test_crown_dependencies_count_as_limited_reporting_like_the_uk(written, region):
    phone = normalize_phone(written, "BR")

    assert (phone.region, phone.limited_reporting) == (region, True)


@pytest.mark.django_db
@pytest.mark.parametrize("region", sorted({row[0] for row in TABLE}))
def test_a_csv_of_national_formats_is_classified_as_documented(region):
    rows = [(written, e164, reason) for r, written, e164, reason in TABLE if r == region]
    content = csv_bytes(["phone"], [[written] for written, _, _ in rows])

    audience = services.ingest_audience(
        upload(OrganizationFactory(), content, default_region=region).pk
    )

    leads = list(audience.leads.order_by("row_number"))
    seen = set()
    expected = []
    for written, e164, reason in rows:
        if not e164:
            status = "invalid_phone"
        elif e164 in seen:
            status, reason = "duplicate", "duplicate"
        else:
            status = "ineligible_geo" if e164.startswith("+1") else "ok"
        seen.add(e164)
        expected.append((written, e164, status, reason))
    got = [
        (lead.phone_raw, lead.phone_e164, lead.ingest_status, lead.reject_reason) for lead in leads
    ]
    assert [row[:3] for row in got] == [row[:3] for row in expected]
    for (_, _, status, reason), (*_, reject_reason) in zip(expected, got, strict=True):
        if status == "invalid_phone":
            assert reject_reason.endswith(reason)


def test_crown_dependency_rows_are_flagged_limited_reporting_at_ingest(db):
    content = csv_bytes(["phone"], [["07781 123456"], ["07797 123456"], ["07624 123456"]])

    audience = services.ingest_audience(
        upload(OrganizationFactory(), content, default_region="GB").pk
    )

    assert list(
        audience.leads.order_by("row_number").values_list("region", "limited_reporting")
    ) == [
        ("GG", True),
        ("JE", True),
        ("IM", True),
    ]
