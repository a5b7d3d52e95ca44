"""Business rules of the webhooks app's own records: the count of Meta status reports
refused. Audience filters are campaigns' rules (campaigns/audience_filters.py) and lead events
audiences' (audiences/lead_events.py); the views only parse, authenticate and call them.
"""

from django.db import connection

from .models import RejectedStatusCount


def record_rejected_statuses(by_field: dict[str, int]) -> None:
    """Add refused Meta status reports to their per-field totals, one upsert per field."""
    table = connection.ops.quote_name(RejectedStatusCount._meta.db_table)
    with connection.cursor() as cursor:
        for field_name, count in sorted(by_field.items()):
            # Concurrent deliveries add to the same row: the increment happens in SQL.
            cursor.execute(
                f"INSERT INTO {table} (field, count) VALUES (%s, %s) "
                f"ON CONFLICT (field) DO UPDATE SET count = {table}.count + excluded.count",
                [field_name, count],
            )
