"""PostgreSQL's planner statistics for the tables a send's eligibility reads (issue 17.1).

Without statistics the planner guesses that an audience holds a handful of leads and probes
the organization's opt-outs once per lead through the wrong index: on a never-analysed
database (restored from a dump, autovacuum not run yet or off) materializing 60k leads with
1.8k opt-outs took 30 s, the same statement with statistics 0.1 s. So a write large enough to
change the picture (an ingest, a segment's targets) analyses what it wrote once it commits,
and the materializer and the dry run analyse any of these tables that holds rows but has no
statistics at all before they plan. ANALYZE samples a fixed number of rows: a fraction of a
second whatever the table's size. SQLite (the embedded default) plans without them.
"""

from django.db import connection, transaction
from django.db.models import Model

from .models import Lead, LeadEvent, OptOut, SegmentTarget

ELIGIBILITY_TABLES = (Lead, SegmentTarget, OptOut, LeadEvent)
# Rows a write must reach before it pays an ANALYZE (autovacuum, when on, covers the rest).
ANALYZE_AFTER_ROWS = 5_000


def analyze_after_write(rows: int, *models: type[Model]) -> None:
    """Once the current transaction commits, ANALYZE these tables if `rows` rows were just
    written to them: below ANALYZE_AFTER_ROWS a write leaves the statistics about right."""
    if connection.vendor != "postgresql" or rows < ANALYZE_AFTER_ROWS:
        return
    transaction.on_commit(lambda: _analyze([model._meta.db_table for model in models]))


def analyze_unanalysed(models=ELIGIBILITY_TABLES) -> None:
    """ANALYZE those of the tables that hold rows but have no statistics: the materializer's
    guard against a database nothing ever analysed."""
    if connection.vendor != "postgresql":
        return
    tables = [model._meta.db_table for model in models]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c WHERE c.oid = ANY(%s::regclass[]) "
            "AND pg_relation_size(c.oid) > 0 AND NOT EXISTS (SELECT 1 FROM pg_stats s "
            "WHERE s.schemaname = current_schema() AND s.tablename = c.relname)",
            [tables],
        )
        missing = [row[0] for row in cursor.fetchall()]
    if missing:
        _analyze(missing)


def _analyze(tables: list[str]) -> None:
    quoted = ", ".join(connection.ops.quote_name(table) for table in tables)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {quoted}")
