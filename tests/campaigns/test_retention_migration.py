"""Migration 0006 (issue 17.5): the recipient table trades its covered, unused and full
indexes and its per-row foreign key checks for partial indexes, and keeps its rows."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from campaigns.models import SendRecipient
from tests.factories import SendRecipientFactory

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("campaigns", "0005_campaign_product_policy")
TABLE = SendRecipient._meta.db_table


def migrate(*targets):
    executor = MigrationExecutor(connection)
    executor.migrate(list(targets) or executor.loader.graph.leaf_nodes())


def schema() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", [TABLE])
        indexes = {name for (name,) in cursor.fetchall()}
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
            [TABLE],
        )
        return {"indexes": indexes, "foreign_keys": cursor.fetchone()[0]}


def test_the_migration_swaps_the_indexes_and_keeps_the_rows():
    recipient = SendRecipientFactory(status=SendRecipient.Status.SENT, wamid="wamid.1")
    try:
        migrate(BEFORE)
        before = schema()
    finally:
        migrate()
    after = schema()

    assert before["foreign_keys"] == 2 and after["foreign_keys"] == 0
    assert {"recipient_send_status", "campaigns_sendrecipient_send_id_4598086c"} <= before[
        "indexes"
    ]
    assert after["indexes"] == {
        "campaigns_sendrecipient_pkey",
        "campaigns_sendrecipient_lead_id_26da35f1",
        "one_message_per_phone",
        "recipient_open",
        "recipient_held",
        "recipient_wamid",
        "recipient_failed",
    }
    assert SendRecipient.objects.get(wamid="wamid.1") == recipient
