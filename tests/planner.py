"""Helpers for tests of query plans at scale: many leads in one statement, and tables left
as a fresh import finds them, without planner statistics."""

from django.db import connection

from audiences.models import Lead


def insert_leads(audience, count: int) -> None:
    """`count` leads in one statement: one phone in eleven repeats an earlier one, every 20th
    lead is a US number, every 50th has no valid phone."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Lead._meta.db_table} (audience_id, organization_id, row_number, "
            "external_id, phone_raw, phone_e164, region, first_name, last_name, email, variables, "
            "ingest_status, reject_reason, limited_reporting) "
            "SELECT %s, %s, n, 'crm-' || n, '', "
            "CASE WHEN n %% 50 = 1 THEN '' ELSE '+4477' || lpad((n %% %s)::text, 8, '0') END, "
            "'GB', 'Ann', '', '', '{}', "
            "CASE WHEN n %% 50 = 1 THEN 'invalid_phone' WHEN n %% 20 = 0 THEN 'ineligible_geo' "
            "ELSE 'ok' END, '', n %% 3 = 0 FROM generate_series(1, %s) n",
            [audience.pk, audience.organization_id, count * 10 // 11, count],
        )


def forget_planner_statistics(*models) -> None:
    """Leave the tables as a fresh import finds them: never analysed, no statistics and no
    row estimates. Catalog rows, so the test's transaction rolls this back too."""
    tables = [model._meta.db_table for model in models]
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM pg_statistic WHERE starelid = ANY(%s::regclass[])", [tables])
        cursor.execute(
            "UPDATE pg_class SET reltuples = -1, relpages = 0 WHERE oid = ANY(%s::regclass[])",
            [tables],
        )
        cursor.execute("SELECT count(*) FROM pg_stats WHERE tablename = ANY(%s)", [tables])
        assert cursor.fetchone() == (0,)
