"""`purge_webhook_logs`: old finished deliveries and old sends' filter events go, the rest stays."""

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from campaigns.models import AudienceFilterEvent, Send
from tests.factories import SendFactory
from webhooks.models import EventType, WebhookAttempt, WebhookDelivery
from webhooks.outbound import services

pytestmark = pytest.mark.django_db
Status = WebhookDelivery.Status


def days_ago(days):
    return timezone.now() - dt.timedelta(days=days)


@pytest.fixture
def logs(organization):
    endpoint = services.create_endpoint(organization, "https://crm.example.com/h")

    def delivery(status, finished_days_ago):
        made = WebhookDelivery.objects.create(
            endpoint=endpoint,
            event_id=f"msg_{status}_{finished_days_ago}",
            event_type=EventType.SEND_COMPLETED,
            payload={},
            status=status,
            finished_at=finished_days_ago and days_ago(finished_days_ago),
        )
        WebhookAttempt.objects.create(delivery=made, attempted_at=timezone.now(), status_code=200)
        return made

    def filter_event(send_status, completed_days_ago):
        send = SendFactory(
            campaign__organization=organization,
            status=send_status,
            scheduled_for=days_ago(completed_days_ago or 0) if completed_days_ago else days_ago(-1),
            completed_at=completed_days_ago and days_ago(completed_days_ago),
        )
        return AudienceFilterEvent.objects.create(
            send=send,
            organization=organization,
            mode="include",
            payload_hash=f"h{send.pk}",
            lead_count=1,
        )

    return {
        "old": [
            delivery(Status.SUCCEEDED, 40),
            delivery(Status.FAILED, 31),
            filter_event(Send.Status.COMPLETED, 45),
            filter_event(Send.Status.MISSED, 60),
        ],
        "kept": [
            delivery(Status.SUCCEEDED, 5),
            delivery(Status.PENDING, None),
            filter_event(Send.Status.COMPLETED, 3),
            filter_event(Send.Status.PENDING, None),
        ],
    }


def purge(*args):
    out = io.StringIO()
    call_command("purge_webhook_logs", *args, stdout=out)
    return out.getvalue().strip()


def test_a_dry_run_counts_and_deletes_nothing(logs):
    output = purge("--dry-run")

    assert output.startswith(
        "Would delete 2 webhook deliveries (2 attempts) and 2 audience-filter events"
    )
    assert WebhookDelivery.objects.count() == 4 and AudienceFilterEvent.objects.count() == 4


def test_old_finished_logs_are_deleted_in_batches(logs):
    output = purge("--batch-size", "1")

    assert output.startswith("Deleted 2 webhook deliveries (2 attempts) and 2 audience-filter")
    remaining = [*WebhookDelivery.objects.all(), *AudienceFilterEvent.objects.all()]
    assert sorted(map(repr, remaining)) == sorted(map(repr, logs["kept"]))
    assert WebhookAttempt.objects.count() == 2


def test_the_age_is_an_option(logs):
    assert purge("--older-than-days", "1").startswith("Deleted 3 webhook deliveries")
