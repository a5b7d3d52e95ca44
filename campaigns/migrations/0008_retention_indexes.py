"""Recipient indexes for sends of a million (issue 17.5): partial indexes for the dispatcher's
claim, lease recovery, the wamid lookup and failures; the covered `send_id` index, the
never-scanned wamid pattern index, the full (send, status) index and the two per-row foreign
key checks go. One transaction: building the partial indexes holds writes to the recipient
table for one scan of it (seconds for millions of rows; see docs/ops.md)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("audiences", "0003_segment_api_ids"),
        ("campaigns", "0007_test_sends"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="sendrecipient",
            index=models.Index(
                condition=models.Q(("status__in", ("queued", "claimed", "sending"))),
                fields=["send", "status", "id"],
                name="recipient_open",
            ),
        ),
        migrations.AddIndex(
            model_name="sendrecipient",
            index=models.Index(
                condition=models.Q(("status__in", ("claimed", "sending"))),
                fields=["lease_expires_at"],
                name="recipient_held",
            ),
        ),
        migrations.AddIndex(
            model_name="sendrecipient",
            index=models.Index(
                condition=models.Q(("wamid", ""), _negated=True),
                fields=["wamid"],
                name="recipient_wamid",
            ),
        ),
        migrations.AddIndex(
            model_name="sendrecipient",
            index=models.Index(
                condition=models.Q(("status", "failed")),
                fields=["send", "error_code"],
                name="recipient_failed",
            ),
        ),
        migrations.RemoveIndex(
            model_name="sendrecipient",
            name="recipient_send_status",
        ),
        migrations.AlterField(
            model_name="sendrecipient",
            name="lead",
            field=models.ForeignKey(
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="audiences.lead",
            ),
        ),
        migrations.AlterField(
            model_name="sendrecipient",
            name="send",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="recipients",
                to="campaigns.send",
            ),
        ),
        migrations.AlterField(
            model_name="sendrecipient",
            name="wamid",
            field=models.CharField(blank=True, max_length=128),
        ),
    ]
