"""`purge_recipients` (issue 17.5): the recipient rows of sends finished longer ago than the
retention period go, in batches; what the campaign's pages, its API and the metrics show for
those sends stays exactly as it was."""

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audiences.models import OptOut
from campaigns import analytics, retention, selectors
from campaigns.admin import delivery_text
from campaigns.models import Campaign, Send, SendRecipient
from tests.factories import (
    AudienceFactory,
    CampaignFactory,
    LeadFactory,
    OptOutFactory,
    SendFactory,
    SendRecipientFactory,
)

pytestmark = pytest.mark.django_db
Status = SendRecipient.Status


def days_ago(days):
    return timezone.now() - dt.timedelta(days=days)


def recipients(send, status, count, **fields):
    return [SendRecipientFactory(send=send, status=status, **fields) for _ in range(count)]


def finished_send(campaign, days, status=Send.Status.COMPLETED, **fields):
    return SendFactory(
        campaign=campaign,
        status=status,
        scheduled_for=days_ago(days + 1),
        completed_at=days_ago(days),
        **fields,
    )


@pytest.fixture
def campaign():
    """A completed campaign: a send finished 100 days ago with recipients in every settled
    state, a send missed 120 days ago, and one finished 10 days ago. Its audience has an
    opted-out phone never messaged."""
    campaign = CampaignFactory(status=Campaign.Status.COMPLETED)
    audience = AudienceFactory(organization=campaign.organization)
    campaign.audiences.add(audience)
    LeadFactory(audience=audience, phone_e164="+442079460001")
    OptOutFactory(
        organization=campaign.organization, phone_e164="+442079460001", scope=OptOut.Scope.ALL
    )
    old = finished_send(campaign, 100)
    recipients(old, Status.READ, 3, sent_at=days_ago(100))
    recipients(old, Status.READ, 1, limited_reporting=True, sent_at=days_ago(100))
    recipients(old, Status.DELIVERED, 2, sent_at=days_ago(100))
    recipients(old, Status.SENT, 1, limited_reporting=True, sent_at=days_ago(100))
    recipients(old, Status.FAILED, 2, error_code="131049", error_title="Ecosystem limit")
    recipients(old, Status.FAILED, 1, error_code="131026", error_title="Undeliverable")
    recipients(old, Status.SKIPPED, 1, skip_reason=SendRecipient.SkipReason.OPTED_OUT)
    recipients(old, Status.UNKNOWN, 1)
    SendFactory(
        campaign=campaign,
        status=Send.Status.MISSED,
        scheduled_for=days_ago(120),
        completed_at=None,
    )
    recent = finished_send(campaign, 10)
    recipients(recent, Status.READ, 2, sent_at=days_ago(10))
    return campaign


def purge(*args):
    out = io.StringIO()
    call_command("purge_recipients", *args, stdout=out)
    return out.getvalue().strip()


def what_the_pages_show(campaign):
    return {
        "analytics": analytics.analytics_json(analytics.campaign_analytics(campaign)),
        "progress": selectors.campaign_send_progress(campaign),
        "sends": {send.pk: selectors.send_progress(send) for send in campaign.sends.all()},
    }


def test_the_old_sends_recipients_go_and_the_recent_ones_stay(campaign):
    missed, old, recent = campaign.sends.order_by("scheduled_for")
    live = SendFactory(status=Send.Status.SENDING, scheduled_for=days_ago(200))
    recipients(live, Status.QUEUED, 2)

    output = purge()

    assert output.splitlines()[-1].startswith("Deleted 12 recipients of 2 sends finished before")
    assert not old.recipients.exists()
    old.refresh_from_db()
    progress = delivery_text(old)
    assert progress.startswith(
        "100% of 12 recipients done — sent 1, delivered 2, read 4, failed 3, skipped 1, "
        "unknown 1 — completed "
    )
    assert progress.endswith(f"recipients purged {old.recipients_purged_at:%Y-%m-%d %H:%M:%S} UTC")
    assert recent.recipients.count() == 2 and live.recipients.count() == 2
    purged = set(Send.objects.exclude(recipients_purged_at=None).values_list("pk", flat=True))
    assert purged == {old.pk, missed.pk}


def test_the_pages_show_the_same_figures_after_the_purge(campaign):
    before = what_the_pages_show(campaign)

    purge()

    assert SendRecipient.objects.filter(send__campaign=campaign).count() == 2
    assert what_the_pages_show(campaign) == before
    assert before["analytics"]["campaign"]["errors"] == [
        {"code": "131049", "title": "Ecosystem limit", "count": 2},
        {"code": "131026", "title": "Undeliverable", "count": 1},
    ]


def test_a_dry_run_counts_and_deletes_nothing(campaign):
    output = purge("--dry-run")

    assert output.startswith("Would delete 12 recipients of 2 sends finished before")
    assert SendRecipient.objects.count() == 14
    assert not Send.objects.exclude(recipients_purged_at=None).exists()


def test_the_age_is_an_option(campaign):
    assert (
        purge("--older-than-days", "5")
        .splitlines()[-1]
        .startswith("Deleted 14 recipients of 3 sends")
    )
    assert (
        purge("--older-than-days", "5")
        .splitlines()[-1]
        .startswith("Deleted 0 recipients of 0 sends")
    )


def test_rows_go_in_batches(campaign):
    cutoff = days_ago(90)
    batches = []

    purged = list(
        retention.purge_recipients(
            cutoff, batch_size=5, on_batch=lambda send, deleted, n: batches.append((deleted, n))
        )
    )

    assert {p.send.status: p.recipients for p in purged} == {"completed": 12, "missed": 0}
    assert batches == [(5, 5), (10, 5), (12, 2)]


def test_a_purge_stopped_half_way_resumes_with_the_figures_it_kept(campaign):
    before = what_the_pages_show(campaign)

    class Stop(Exception):
        pass

    def stop_after_the_first_batch(send, deleted, n):
        raise Stop

    with pytest.raises(Stop):
        list(
            retention.purge_recipients(
                days_ago(90), batch_size=5, on_batch=stop_after_the_first_batch
            )
        )
    assert SendRecipient.objects.filter(send__campaign=campaign).count() == 14 - 5
    assert what_the_pages_show(campaign) == before

    output = purge()

    assert output.splitlines()[-1].startswith("Deleted 7 recipients of 2 sends")
    assert what_the_pages_show(campaign) == before


@pytest.mark.parametrize("option", [("--older-than-days", "-1"), ("--batch-size", "0")])
def test_refuses_a_negative_age_or_an_empty_batch(option):
    with pytest.raises(CommandError, match="--older-than-days must be ≥ 0 and --batch-size ≥ 1"):
        purge(*option)


def message_metrics(client) -> dict[str, float]:
    lines = client.get("/metrics").content.decode().splitlines()
    samples = dict(line.rsplit(" ", 1) for line in lines if line and not line.startswith("#"))
    return {
        name: float(value)
        for name, value in samples.items()
        if name.startswith(("setter_messages", "setter_recipients_queued"))
    }


def test_the_metrics_count_purged_messages_as_before(campaign, client):
    before = message_metrics(client)

    purge()

    assert message_metrics(client) == before
    assert before['setter_messages_sent_total{category="MARKETING"}'] == 9
    assert before['setter_messages_failed_total{category="MARKETING",error_code="131049"}'] == 2
