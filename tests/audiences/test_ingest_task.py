"""The ingest through a real Celery worker on the Redis broker, as an admin upload runs it."""

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections

from audiences import services
from audiences.models import Audience
from setter.celery import app as celery_app
from tests.factories import OrganizationFactory
from tests.support import wait_until

from .helpers import MIXED_ROWS, mixed_csv

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def celery_worker(settings):
    """A worker thread on the Redis from REDIS_URL (this suite's own database number),
    its queue emptied of messages left by earlier runs."""
    assert settings.REDIS_URL.startswith("redis://"), "the task tests need REDIS_URL"
    settings.CELERY_BROKER_URL = settings.REDIS_URL
    celery_app.conf.broker_url = settings.REDIS_URL
    celery_app.control.purge()
    task_postrun.connect(close_worker_connections)
    try:
        with start_worker(celery_app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
            yield
    finally:
        task_postrun.disconnect(close_worker_connections)


def close_worker_connections(**kwargs):
    """Runs in the worker thread: its database connection must not outlive the test."""
    connections.close_all()


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
