"""The campaign page's delivery analytics, its live progress view, and the recipient
drill-down with its CSV export, exercised over HTTP as a marketer would use them."""

import csv
import datetime as dt
import io
import re

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from audiences.models import Lead, OptOut
from campaigns import analytics
from campaigns.models import Campaign, Send, SendRecipient
from messaging.models import Category
from tests.factories import (
    AudienceFactory,
    CampaignFactory,
    LeadFactory,
    OptOutFactory,
    SendFactory,
    SendRecipientFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

Status = SendRecipient.Status
CHART_JS = "campaigns/vendor/chartjs/chart.umd.min.js"


def recipients(send, status, count, **fields):
    return [SendRecipientFactory(send=send, status=status, **fields) for _ in range(count)]


@pytest.fixture
def campaign():
    """A running campaign: a marketing send firing with recipients in every state, and a
    utility send two days out in Tokyo. Its audience has opted-out, invalid and US leads."""
    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    audience = AudienceFactory(organization=campaign.organization)
    campaign.audiences.add(audience)
    org = campaign.organization
    for phone, scope in [
        ("+442079460001", OptOut.Scope.ALL),  # never messaged: counts for both sends
        ("+442079460002", OptOut.Scope.MARKETING),  # stops the marketing send only
        ("+442079460003", OptOut.Scope.ALL),  # read the marketing message, then said STOP
        ("+442079460005", OptOut.Scope.ALL),  # skipped by the marketing send
    ]:
        LeadFactory(audience=audience, phone_e164=phone)
        OptOutFactory(organization=org, phone_e164=phone, scope=scope)
    LeadFactory(audience=audience, phone_e164="+442079460004")
    OptOutFactory(phone_e164="+442079460004")  # another organization's opt-out: not ours
    LeadFactory(audience=audience, phone_e164="", ingest_status=Lead.IngestStatus.INVALID_PHONE)
    LeadFactory(
        audience=audience, phone_e164="+12025550143", ingest_status=Lead.IngestStatus.INELIGIBLE_GEO
    )
    OptOutFactory(organization=org, phone_e164="+12025550143", scope=OptOut.Scope.ALL)

    firing = SendFactory(
        campaign=campaign,
        position=0,
        status=Send.Status.SENDING,
        scheduled_for=timezone.now() - dt.timedelta(minutes=1),
    )
    recipients(firing, Status.QUEUED, 2)
    recipients(firing, Status.SENDING, 1)
    recipients(firing, Status.SENT, 2)
    recipients(firing, Status.SENT, 1, limited_reporting=True)
    recipients(firing, Status.DELIVERED, 1)
    recipients(firing, Status.DELIVERED, 1, limited_reporting=True)
    recipients(firing, Status.READ, 3)
    recipients(firing, Status.READ, 1, phone_e164="+442079460003")
    recipients(firing, Status.FAILED, 2, error_code="131049", error_title="Ecosystem limit")
    recipients(firing, Status.FAILED, 1, error_code="131026", error_title="Undeliverable")
    recipients(firing, Status.SKIPPED, 1, phone_e164="+442079460005")
    recipients(firing, Status.UNKNOWN, 1)
    SendFactory(
        campaign=campaign,
        position=1,
        category=Category.UTILITY,
        time_zone="Asia/Tokyo",
        scheduled_for=dt.datetime(2031, 3, 1, 0, 30, tzinfo=dt.UTC),
    )
    return campaign


@pytest.fixture
def sends(campaign):
    return list(campaign.sends.order_by("position"))


@pytest.fixture
def marketer(client, campaign):
    client.force_login(UserFactory(organization=campaign.organization))
    return client


@pytest.fixture
def other_campaign():
    """Another organization's campaign with one failed recipient."""
    send = SendFactory(status=Send.Status.COMPLETED)
    SendRecipientFactory(send=send, status=Status.FAILED, error_code="131049")
    return send.campaign


def page_url(campaign):
    return reverse("admin:campaigns_campaign_change", args=[campaign.pk])


def progress_url(campaign):
    return reverse("admin:campaigns_campaign_progress", args=[campaign.pk])


EXPORT_URL = reverse("admin:campaigns_sendrecipient_export")
RECIPIENTS_URL = reverse("admin:campaigns_sendrecipient_changelist")


def exported_rows(response) -> list[dict]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


# --- Selectors ----------------------------------------------------------------------------


def test_the_analytics_count_a_campaigns_funnel_in_a_fixed_number_of_queries(
    campaign, sends, django_assert_max_num_queries
):
    with django_assert_max_num_queries(7):
        figures = analytics.campaign_analytics(campaign)

    firing, utility = figures.sends
    funnel = firing.funnel
    assert funnel.progress.counts == {
        "claimed": 0,
        "queued": 2,
        "sending": 1,
        "sent": 3,
        "delivered": 2,
        "read": 4,
        "failed": 3,
        "skipped": 1,
        "unknown": 1,
    }
    assert (funnel.progress.total, funnel.progress.done) == (17, 14)
    assert funnel.reached == {"queued": 17, "sent": 9, "delivered": 6, "read": 4}
    assert funnel.progress.limited_reporting == 2
    # Reads over deliveries Meta reports on: the limited-reporting delivery is left out.
    assert funnel.read_rate == 4 / 5
    assert [(e.code, e.title, e.count) for e in funnel.errors] == [
        ("131049", "Ecosystem limit", 2),
        ("131026", "Undeliverable", 1),
    ]
    assert utility.funnel.progress.total == 0 and utility.funnel.read_rate is None
    assert figures.funnel.progress.total == 17
    assert figures.next_send.send == sends[1]


def test_opted_out_counts_audience_phones_a_send_did_not_message(campaign):
    figures = analytics.campaign_analytics(campaign)

    marketing, utility = figures.sends
    # Marketing: never messaged (all), marketing-only, and the skipped one; not the phone
    # that read the message before saying STOP, nor the US number it could never reach.
    assert marketing.opted_out == 3
    # Utility: every phone opted out of all messages, US included; not marketing-only ones.
    assert utility.opted_out == 4
    assert (marketing.invalid_phone, marketing.us_blocked, marketing.ineligible) == (1, 1, 2)
    assert (utility.invalid_phone, utility.us_blocked, utility.ineligible) == (1, 0, 1)
    assert figures.audience == analytics.AudienceFacts(
        invalid_phone=1, ineligible_geo=1, opted_out_all=4, opted_out_marketing=1
    )


def test_the_page_polls_while_something_can_change_and_stops_after(campaign, sends):
    firing, later = sends
    assert analytics.campaign_analytics(campaign).poll_after_ms == analytics.LIVE_POLL_MS

    long_ago = timezone.now() - analytics.FEEDBACK_WINDOW - dt.timedelta(minutes=1)
    Send.objects.filter(pk=firing.pk).update(status=Send.Status.COMPLETED, completed_at=long_ago)
    assert analytics.campaign_analytics(campaign).poll_after_ms == analytics.WAITING_POLL_MS

    Send.objects.filter(pk=later.pk).update(scheduled_for=timezone.now() + dt.timedelta(minutes=1))
    assert analytics.campaign_analytics(campaign).poll_after_ms == analytics.LIVE_POLL_MS

    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)
    campaign.refresh_from_db()
    assert analytics.campaign_analytics(campaign).poll_after_ms is None


# --- The progress view --------------------------------------------------------------------


def test_the_progress_view_serves_counts_progress_and_failures_by_code(marketer, campaign, sends):
    state = marketer.get(progress_url(campaign)).json()

    firing, utility = state["sends"]
    assert firing["id"] == sends[0].pk and firing["status"] == "sending"
    assert firing["counts"]["read"] == 4 and firing["counts"]["failed"] == 3
    assert firing["reached"] == {"queued": 17, "sent": 9, "delivered": 6, "read": 4}
    assert (firing["total"], firing["done"], firing["progress"]) == (17, 14, 0.8235)
    assert (firing["read_rate"], firing["limited_reporting"]) == (0.8, 2)
    assert firing["errors"] == [
        {"code": "131049", "title": "Ecosystem limit", "count": 2},
        {"code": "131026", "title": "Undeliverable", "count": 1},
    ]
    assert (firing["opted_out"], firing["ineligible"]) == (3, 2)
    assert utility["scheduled_for"] == "2031-03-01T00:30:00+00:00"
    assert utility["progress"] == 0.0
    assert state["campaign"]["counts"]["read"] == 4
    assert state["campaign"]["status"] == "running"
    assert state["poll_after_ms"] == analytics.LIVE_POLL_MS
    assert state["next_send_id"] == sends[1].pk  # the first one is firing


def test_the_progress_view_follows_recipients_as_they_move(marketer, campaign, sends):
    SendRecipient.objects.filter(send=sends[0], status__in=[Status.QUEUED, Status.SENDING]).update(
        status=Status.DELIVERED
    )

    firing = marketer.get(progress_url(campaign)).json()["sends"][0]

    assert (firing["counts"]["queued"], firing["counts"]["delivered"]) == (0, 5)
    assert (firing["done"], firing["progress"]) == (17, 1.0)


def test_another_organizations_campaign_is_not_found(marketer, other_campaign):
    assert marketer.get(page_url(other_campaign)).status_code == 404
    assert marketer.get(progress_url(other_campaign)).status_code == 404


# --- The campaign page --------------------------------------------------------------------


def test_the_page_serves_chart_js_from_the_project(marketer, campaign):
    response = marketer.get(page_url(campaign))

    html = response.content.decode()
    assert f'src="/static/{CHART_JS}"' in html
    assert 'src="/static/campaigns/analytics.js"' in html
    assert not re.search(r"<script[^>]+src=[\"']?(https?:)?//", html)
    vendored = finders.find(CHART_JS)
    assert vendored is not None
    with open(vendored) as script:
        assert script.read(40).startswith("/*!\n * Chart.js v4.")


def test_the_page_shows_each_sends_funnel_on_the_dom_contract(marketer, campaign, sends):
    firing, later = sends

    response = marketer.get(page_url(campaign))

    html = response.content.decode()
    assert 'id="campaign-analytics"' in html
    assert f'data-progress-url="{progress_url(campaign)}"' in html
    assert '<canvas id="campaign-funnel" class="funnel-chart"' in html
    assert html.count('class="funnel-chart"') == 3  # the campaign's and one per send
    assert f'<div class="send-analytics form-row" data-send-id="{firing.pk}"' in html
    assertContains(response, '<progress class="send-progress" value="0.8235" max="1"', count=1)
    assertContains(response, '<span class="send-progress-label">82%</span>', html=True)
    assertContains(response, '<td data-count="read">4</td>', html=True, count=2)
    assertContains(response, '<td data-count="failed">3</td>', html=True, count=2)
    assertContains(response, '<strong data-field="read_rate">80%</strong>', html=True)
    assertContains(response, "in EEA/UK/JP/KR where Meta does not report reads")
    assertContains(response, '<span data-field="limited_reporting">2</span>', html=True)
    assertContains(response, '<strong data-field="opted_out">3</strong>', html=True)
    assertContains(response, '<strong data-field="ineligible">2</strong>', html=True)
    assertContains(
        response,
        f'href="{RECIPIENTS_URL}?send__id__exact={firing.pk}&amp;status__exact=failed'
        '&amp;error_code=131049"',
    )
    assertContains(response, f'href="{RECIPIENTS_URL}?send__id__exact={firing.pk}">Recipients')
    # The Tokyo send: the UTC instant for the browser, the send's own zone as text.
    assertContains(
        response,
        '<time class="next-fire" datetime="2031-03-01T00:30:00+00:00">'
        "2031-03-01 09:30 JST (Asia/Tokyo)</time>",
        count=2,  # the campaign's next send, and the send itself
    )
    assertContains(response, '<span class="next-fire-viewer"></span>', count=3)


def test_a_draft_campaign_shows_its_analytics_without_polling(client):
    send = SendFactory()
    client.force_login(UserFactory(organization=send.campaign.organization))

    response = client.get(page_url(send.campaign))

    assertContains(response, 'data-poll-after-ms=""')
    assertContains(response, '<td data-count="queued">0</td>', html=True, count=2)
    # No recipients yet, so no caveat to show and no failures to list.
    assertContains(response, '<span class="limited-reporting-caveat" hidden>', count=2)
    assertContains(response, '<table class="error-groups" data-filter=', count=2)
    assertNotContains(response, "<tr data-error-code=")


# --- The recipient drill-down and its CSV export -----------------------------------------


def test_the_recipient_list_filters_by_send_status_and_error_code(marketer, sends):
    firing = sends[0]
    query = f"send__id__exact={firing.pk}&status__exact=failed&error_code=131049"

    response = marketer.get(f"{RECIPIENTS_URL}?{query}")

    assert response.status_code == 200
    listed = list(response.context["cl"].result_list)
    assert len(listed) == 2 and {r.error_code for r in listed} == {"131049"}
    assertContains(response, "131049 Ecosystem limit")  # the error-code filter's choice
    assertContains(response, f'href="{EXPORT_URL}?{query.replace("&", "&amp;")}"')


def test_the_campaigns_recipients_link_lists_every_send_of_it(marketer, campaign, other_campaign):
    response = marketer.get(RECIPIENTS_URL, {"send__campaign__id__exact": campaign.pk})

    assert response.status_code == 200
    assert response.context["cl"].result_count == 17


def test_the_csv_export_holds_exactly_the_filtered_recipients(marketer, sends):
    firing = sends[0]

    failed = exported_rows(
        marketer.get(EXPORT_URL, {"send__id__exact": firing.pk, "status__exact": "failed"})
    )
    one_code = exported_rows(
        marketer.get(EXPORT_URL, {"send__id__exact": firing.pk, "error_code": "131026"})
    )
    searched = exported_rows(marketer.get(EXPORT_URL, {"q": "+442079460003"}))

    assert sorted(row["error_code"] for row in failed) == ["131026", "131049", "131049"]
    assert {row["status"] for row in failed} == {"failed"}
    assert [(row["error_code"], row["error_title"]) for row in one_code] == [
        ("131026", "Undeliverable")
    ]
    assert [(row["phone_e164"], row["status"]) for row in searched] == [("+442079460003", "read")]
    assert searched[0]["send_id"] == str(firing.pk) and searched[0]["read_at"] == ""


def test_the_csv_export_never_shows_another_organizations_recipients(
    marketer, sends, other_campaign
):
    other_send = other_campaign.sends.get()

    everything = exported_rows(marketer.get(EXPORT_URL))

    assert len(everything) == 17
    assert marketer.get(EXPORT_URL, {"send__id__exact": other_send.pk}).status_code == 404
    by_campaign = {"send__campaign__id__exact": other_campaign.pk}
    assert marketer.get(EXPORT_URL, by_campaign).status_code == 404
    assert marketer.get(EXPORT_URL, {"send__id__exact": "x"}).status_code == 404


def test_a_campaign_cancelled_mid_send_says_what_it_came_to_not_100_percent(client):
    send = SendFactory(status=Send.Status.CANCELLED)
    campaign = Campaign.objects.get(pk=send.campaign_id)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CANCELLED)
    recipients(send, Status.SENT, 20)
    recipients(send, Status.SKIPPED, 4, skip_reason="cancelled")
    client.force_login(UserFactory(organization=campaign.organization))

    page = client.get(page_url(campaign))

    assertContains(page, "Cancelled after 20 of 24 messages were sent (4 skipped)", count=2)
    assertNotContains(page, "of the sends done")


def test_a_campaign_cancelled_before_anything_fired_says_so(client):
    send = SendFactory(status=Send.Status.CANCELLED)
    campaign = Campaign.objects.get(pk=send.campaign_id)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CANCELLED)
    client.force_login(UserFactory(organization=campaign.organization))

    page = client.get(page_url(campaign))

    assertContains(page, "Cancelled before any message was sent")
    assertNotContains(page, "of the sends done")
