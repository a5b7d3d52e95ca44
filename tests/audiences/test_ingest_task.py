"""The ingest through a real Celery worker on the Redis broker, as an admin upload runs it
(`celery_worker`: tests/conftest.py)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audiences import services
from audiences.models import Audience
from tests.factories import OrganizationFactory
from tests.support import wait_until

from .helpers import MIXED_ROWS, mixed_csv

pytestmark = pytest.mark.django_db(transaction=True)


def finished(audience_id):
    audience = Audience.objects.get(pk=audience_id)
    return audience if audience.status in (Audience.Status.READY, Audience.Status.FAILED) else None


def test_an_upload_is_ingested_by_a_worker(celery_worker):
    audience = services.create_csv_audience(
        organization=OrganizationFactory(),
        name="From the worker",
        file=SimpleUploadedFile("leads.csv", mixed_csv()),
        default_region="BR",
    )

    audience = wait_until(lambda: finished(audience.pk), timeout=30)

    assert audience.status == Audience.Status.READY
    assert audience.total_rows == audience.leads.count() == len(MIXED_ROWS)
    assert (audience.count_ok, audience.count_duplicate) == (6, 2)


def test_a_bad_upload_fails_in_the_worker_with_its_reason(celery_worker):
    audience = services.create_csv_audience(
        organization=OrganizationFactory(),
        name="Not a CSV",
        file=SimpleUploadedFile("leads.xlsx", b"PK\x03\x04\x00\x00binary"),
    )

    audience = wait_until(lambda: finished(audience.pk), timeout=30)

    assert audience.status == Audience.Status.FAILED
    assert audience.error.startswith("This is not a CSV file")
    assert audience.leads.count() == 0
