"""Building CSV uploads for audience tests."""

import csv
import io

from django.core.files.uploadedfile import SimpleUploadedFile

from audiences import services

HEADER = ["external_id", "Phone Number", "First Name", "last_name", "email", "city", "plan"]
# (external_id, phone, expected status, expected E.164, region, limited reporting)
MIXED_ROWS = [
    ("c-1", "+55 11 91234-5678", "ok", "+5511912345678", "BR", False),
    ("c-2", "(11) 91234-5679", "ok", "+5511912345679", "BR", False),
    ("c-3", "+44 7400 123456", "ok", "+447400123456", "GB", True),
    ("c-4", "+44 20 7946 0123", "ok", "+442079460123", "GB", True),
    ("c-5", "+1 202-555-0123", "ineligible_geo", "+12025550123", "US", False),
    ("c-6", "12345", "invalid_phone", "", "", False),
    ("c-7", "", "invalid_phone", "", "", False),
    ("c-8", "+55 (11) 91234-5678", "duplicate", "+5511912345678", "BR", False),
    ("c-9", "+49 151 23456789", "ok", "+4915123456789", "DE", True),
    ("c-10", "+1 (202) 555-0123", "duplicate", "+12025550123", "US", False),
    ("c-11", "+91 98765 43210", "ok", "+919876543210", "IN", False),
]


def csv_bytes(header, rows, delimiter=",") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def mixed_csv() -> bytes:
    rows = [
        (external_id, phone, f"First{n}", f"Last{n}", f"lead{n}@example.com", "São Paulo", "pro")
        for n, (external_id, phone, *_) in enumerate(MIXED_ROWS, start=1)
    ]
    return csv_bytes(HEADER, rows)


def upload(organization, content: bytes, *, name="leads.csv", **options):
    """A stored, not yet ingested audience (the ingest is left to the test)."""
    options.setdefault("default_region", "BR")
    return services.create_csv_audience(
        organization=organization,
        name="Spring leads",
        file=SimpleUploadedFile(name, content, content_type="text/csv"),
        enqueue=False,
        **options,
    )
