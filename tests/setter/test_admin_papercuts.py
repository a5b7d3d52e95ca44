"""Newcomer papercuts in the admin, each checked through the test client."""

import pytest
from django.urls import reverse

from audiences import services as audience_services
from campaigns import services
from campaigns.admin import delivery_text
from campaigns.models import Campaign, Send
from tests.audiences.helpers import mixed_csv, upload
from tests.campaigns.editor import ready_campaign, refreshed
from tests.factories import OrganizationFactory, SendRecipientFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return OrganizationFactory()


@pytest.fixture
def staff(client, org):
    user = UserFactory(organization=org)
    client.force_login(user)
    return user


@pytest.fixture
def audience(org):
    return audience_services.ingest_audience(upload(org, mixed_csv()).pk)


def test_the_audience_page_links_its_csv_through_the_admin_not_media(client, staff, audience):
    page = client.get(reverse("admin:audiences_audience_change", args=[audience.pk]))
    file_url = reverse("admin:audiences_audience_file", args=[audience.pk])

    assert f'href="{file_url}"' in page.content.decode()
    assert "/media/" not in page.content.decode()

    response = client.get(file_url)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == mixed_csv()


def test_another_organizations_staff_cannot_download_the_csv(client, audience):
    client.force_login(UserFactory(organization=OrganizationFactory()))

    response = client.get(reverse("admin:audiences_audience_file", args=[audience.pk]))

    assert response.status_code == 404


def test_anonymous_visitors_cannot_download_the_csv(client, audience):
    response = client.get(reverse("admin:audiences_audience_file", args=[audience.pk]))

    assert response.status_code == 302 and "/login/" in response["Location"]


# --- The campaign page --------------------------------------------------------------------


def campaign_url(campaign, name="change", *args):
    return reverse(f"admin:campaigns_campaign_{name}", args=[campaign.pk, *args])


@pytest.fixture
def scheduled(org):
    """A scheduled campaign: one send queued half-way (2 sent, 3 queued, 1 claimed), one to come."""
    campaign = ready_campaign(organization=org, leads=4)
    services.transition_campaign(campaign, "schedule")
    first, second = campaign.sends.order_by("position")
    Send.objects.filter(pk=first.pk).update(status=Send.Status.SENDING)
    for status, count in [("sent", 2), ("queued", 3), ("claimed", 1)]:
        for _ in range(count):
            SendRecipientFactory(send=first, status=status)
    return campaign


def test_the_campaign_page_shows_the_api_id(client, staff, org):
    campaign = ready_campaign(organization=org, api_id="spring-2030")

    page = client.get(campaign_url(campaign)).content.decode()

    assert "API id" in page
    assert "spring-2030" in page
    listed = client.get(reverse("admin:campaigns_campaign_changelist"), {"q": "spring-2030"})
    assert [c.pk for c in listed.context["cl"].result_list] == [campaign.pk]


def test_cancel_asks_first_with_the_counts_it_will_skip(client, staff, scheduled):
    page = client.get(campaign_url(scheduled)).content.decode()
    confirm_url = campaign_url(scheduled, "transition", "cancel")
    assert f'href="{confirm_url}"' in page  # a link to the question, not a form that cancels

    question = client.get(confirm_url)

    assert question.status_code == 200
    body = question.content.decode()
    assert '<strong data-impact="sends">2</strong> sends' in body
    assert "(1 not yet materialized" in body
    assert '<strong data-impact="recipients">4</strong> queued recipients' in body
    assert refreshed(scheduled).status == Campaign.Status.SCHEDULED

    client.post(confirm_url)
    assert refreshed(scheduled).status == Campaign.Status.CANCELLED


def test_cancel_of_another_organizations_campaign_is_not_found(client, scheduled):
    client.force_login(UserFactory(organization=OrganizationFactory()))

    response = client.get(campaign_url(scheduled, "transition", "cancel"))

    assert response.status_code == 404


def test_the_progress_view_serves_the_status_actions_and_each_sends_progress_text(
    client, staff, scheduled
):
    state = client.get(campaign_url(scheduled, "progress")).json()

    assert state["campaign"]["status"] == "scheduled"
    assert state["campaign"]["actions"] == services.available_actions(scheduled)
    first, second = state["sends"]
    assert "of 6 recipients done — queued 3, sent 2, claimed 1" in first["delivery"]
    assert first["delivery"] == delivery_text(Send.objects.get(pk=first["id"]))
    assert second["delivery"] == "—"
