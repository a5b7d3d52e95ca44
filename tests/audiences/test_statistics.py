"""Planner statistics after large writes (issue 17.1): an ingest or a segment's targets that
wrote many rows are analysed once they commit; small writes pay nothing; a table nothing
ever analysed is analysed before a send materializes."""

import pytest
from django.db import connection

from audiences import segments, services, statistics
from audiences.models import Lead, SegmentTarget
from tests.audiences.helpers import csv_bytes, upload
from tests.factories import AudienceFactory, OrganizationFactory
from tests.planner import forget_planner_statistics, insert_leads

pytestmark = pytest.mark.django_db
THRESHOLD = 30


@pytest.fixture(autouse=True)
def small_threshold(monkeypatch):
    """The production threshold (thousands of rows) scaled down to a test's few dozen."""
    monkeypatch.setattr(statistics, "ANALYZE_AFTER_ROWS", THRESHOLD)
    forget_planner_statistics(Lead, SegmentTarget)


def analysed(model) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_stats WHERE schemaname = current_schema() "
            "AND tablename = %s)",
            [model._meta.db_table],
        )
        return cursor.fetchone()[0]


def persons(count: int) -> list[dict]:
    return [{"phone": f"+44 7700 9{n:05d}", "external_id": f"p-{n}"} for n in range(count)]


@pytest.mark.parametrize("count,expected", [(THRESHOLD, True), (THRESHOLD - 1, False)])
def test_a_segment_created_with_its_persons_is_analysed_when_it_is_large(
    count, expected, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.create_api_audience(
            organization=OrganizationFactory(), name="Partners", leads=persons(count)
        )

    assert analysed(Lead) is expected


@pytest.mark.parametrize("rows,expected", [(THRESHOLD, True), (THRESHOLD - 1, False)])
def test_a_csv_ingest_is_analysed_when_it_is_large(
    rows, expected, django_capture_on_commit_callbacks
):
    content = csv_bytes(["phone"], [[f"+44 7700 9{n:05d}"] for n in range(rows)])
    audience = upload(OrganizationFactory(), content)

    with django_capture_on_commit_callbacks(execute=True):
        assert services.ingest_audience(audience.pk).total_rows == rows

    assert analysed(Lead) is expected


def test_adding_many_targets_analyses_the_targets_not_a_few(django_capture_on_commit_callbacks):
    organization = OrganizationFactory()
    owner = AudienceFactory(organization=organization)
    insert_leads(owner, 2 * THRESHOLD)
    lead_ids = list(Lead.objects.filter(audience=owner).values_list("pk", flat=True))
    segment = segments.create_segment(organization, name="Picked")

    with django_capture_on_commit_callbacks(execute=True):
        segments.add_targets(segment, lead_ids[: THRESHOLD - 1])
    assert not analysed(SegmentTarget)

    with django_capture_on_commit_callbacks(execute=True):
        segments.add_targets(segment, lead_ids[THRESHOLD - 1 :])
    assert analysed(SegmentTarget)


def test_tables_with_rows_and_no_statistics_are_analysed_before_planning():
    insert_leads(AudienceFactory(), 10)
    assert not analysed(Lead)

    statistics.analyze_unanalysed()

    assert analysed(Lead)
