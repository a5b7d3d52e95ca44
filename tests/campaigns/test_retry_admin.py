"""The send's "Retry failed…" page and its waves in the admin (issue 15.2), over HTTP as a
marketer uses them; the rules: tests/campaigns/test_retry_failed.py."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns import retries
from campaigns.models import SendRecipient, SendWave
from tests.factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

Status = SendRecipient.Status


@pytest.fixture
def send(completed_send):
    send = completed_send(
        [(Status.FAILED, "131000"), (Status.FAILED, "131000"), (Status.FAILED, "131026")]
    )
    send.time_zone = "Europe/Madrid"
    send.save(update_fields=["time_zone"])
    return send


@pytest.fixture
def marketer(client, send):
    client.force_login(UserFactory(organization=send.campaign.organization))
    return client


def page_url(send):
    return reverse("admin:campaigns_sendwave_retry", args=[send.pk])


def test_the_editor_and_the_analytics_link_a_completed_send_to_its_retry_page(marketer, send):
    editor = marketer.get(reverse("admin:campaigns_campaign_change", args=[send.campaign.pk]))

    html = editor.content.decode()
    assert html.count(page_url(send)) == 2  # the send's Retry field and its analytics


def test_the_page_shows_the_failures_by_class_and_schedules_the_retry_in_the_sends_zone(
    marketer, send
):
    page = marketer.get(page_url(send)).content.decode()
    assert 'data-class="retryable"><td>Meta or the network failed' in page
    assert "<td>2</td><td>yes</td>" in page
    assert "Undeliverable (131026)" in page and "only if ticked below" in page

    at = (timezone.now() + dt.timedelta(days=1)).astimezone(ZoneInfo("Europe/Madrid"))
    answer = marketer.post(
        page_url(send), {"at": at.strftime("%Y-%m-%dT%H:%M"), "include": ["undeliverable"]}
    )

    assert answer.status_code == 302
    wave = SendWave.objects.get()
    assert wave.scheduled_for == at.replace(second=0, microsecond=0)
    assert (wave.include, wave.requested_by) == (
        ["undeliverable"],
        answer.wsgi_request.user.username,
    )
    followed = marketer.get(answer["Location"]).content.decode()
    assert "Retry 1 of send" in followed and "(Europe/Madrid)" in followed


def test_a_refusal_is_shown_and_nothing_is_scheduled(marketer, send):
    past = (timezone.now() - dt.timedelta(days=1)).astimezone(ZoneInfo("Europe/Madrid"))

    answer = marketer.post(page_url(send), {"at": past.strftime("%Y-%m-%dT%H:%M")})

    assert answer.status_code == 200
    assert 'id="retry-refusal">The retry time has passed' in answer.content.decode()
    assert not SendWave.objects.exists()


def test_the_waves_show_in_the_sends_progress_and_analytics(marketer, send):
    retries.retry_failed(send, at=timezone.now())
    assert retries.start_due_retry_waves() == [send.pk]

    editor = marketer.get(reverse("admin:campaigns_campaign_change", args=[send.campaign.pk]))

    html = editor.content.decode()
    assert "Retry 1 at " in html and "2 of 2 failed recipients queued again (queued 2)" in html
    assert '<tr data-wave="2">' in html
    progress = marketer.get(
        reverse("admin:campaigns_campaign_progress", args=[send.campaign.pk])
    ).json()
    [wave] = progress["sends"][0]["waves"]
    assert (wave["number"], wave["chosen"], wave["requeued"]) == (2, 2, 2)
    assert wave["counts"]["queued"] == 2


def test_another_organizations_send_is_not_found(client, send):
    client.force_login(UserFactory(organization=OrganizationFactory()))

    assert client.get(page_url(send)).status_code == 404
    assert client.post(page_url(send), {"at": "2031-01-01T10:00"}).status_code == 404
    assert not SendWave.objects.exists()
