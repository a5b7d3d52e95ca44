"""The audience admin over HTTP: upload, live ingest state, rejects download, opt-outs,
and one organization never reaching another's audience."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audiences import services
from audiences.models import Audience, Lead, OptOut
from tests.factories import (
    CampaignFactory,
    LeadEventFactory,
    LeadFactory,
    OrganizationFactory,
    UserFactory,
)

from .helpers import MIXED_ROWS, mixed_csv, upload

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
def ingested(org):
    return services.ingest_audience(upload(org, mixed_csv()).pk)


def test_uploading_a_csv_creates_a_pending_audience_and_queues_its_ingest(
    client, staff, org, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            reverse("admin:audiences_audience_add"),
            {
                "organization": org.pk,
                "name": "Webinar signups",
                "file": SimpleUploadedFile("signups.csv", mixed_csv(), "text/csv"),
                "phone_column": "",
                "default_region": "BR",
            },
        )

    assert response.status_code == 302
    audience = Audience.objects.get()
    assert (audience.organization, audience.name, audience.default_region) == (
        org,
        "Webinar signups",
        "BR",
    )
    assert audience.status == Audience.Status.PENDING
    assert audience.file.read() == mixed_csv()
    assert audience.total_bytes == len(mixed_csv())
    assert len(callbacks) == 1  # the ingest task, sent once the upload is committed


def test_the_upload_form_requires_a_file(client, staff, org):
    response = client.post(
        reverse("admin:audiences_audience_add"),
        {"organization": org.pk, "name": "No file", "default_region": "US"},
    )

    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert not Audience.objects.exists()


def test_the_change_page_shows_counts_and_the_rejects_link(client, staff, ingested):
    response = client.get(reverse("admin:audiences_audience_change", args=[ingested.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-count="duplicate">2<' in page
    assert 'data-count="limited_reporting">3<' in page
    assert reverse("admin:audiences_audience_rejects", args=[ingested.pk]) in page


def test_the_ingest_status_endpoint_reports_progress_and_counts(client, staff, org):
    audience = upload(org, mixed_csv())
    url = reverse("admin:audiences_audience_ingest_status", args=[audience.pk])

    before = client.get(url).json()
    services.ingest_audience(audience.pk)
    after = client.get(url).json()

    assert (before["status"], before["progress"]) == ("pending", 0.0)
    assert (after["status"], after["progress"], after["total_rows"]) == ("ready", 100.0, 11)
    assert after["counts"]["ok"] == 6
    assert after["rejected"] == 5


def test_the_rejects_download_streams_every_rejected_row(client, staff, ingested):
    response = client.get(reverse("admin:audiences_audience_rejects", args=[ingested.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    expected = [(str(n), row[2]) for n, row in enumerate(MIXED_ROWS, 1) if row[2] != "ok"]
    assert [(row["row_number"], row["status"]) for row in rows] == expected
    assert all(row["reason"] for row in rows)


def test_another_organizations_staff_cannot_see_the_audience(client, ingested):
    outsider = UserFactory(organization=OrganizationFactory())
    client.force_login(outsider)

    for name in ("change", "ingest_status", "rejects"):
        response = client.get(reverse(f"admin:audiences_audience_{name}", args=[ingested.pk]))
        assert response.status_code in (302, 404), name
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert b"+5511912345678" not in body and b"c-6" not in body


def test_anonymous_visitors_are_sent_to_the_login(client, ingested):
    response = client.get(reverse("admin:audiences_audience_rejects", args=[ingested.pk]))

    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_leads_list_searches_and_filters_by_audience(client, staff, ingested):
    LeadFactory(external_id="someone-else")  # another organization's lead
    url = reverse("admin:audiences_lead_changelist")

    searched = client.get(url, {"q": "c-6"}).content.decode()
    filtered = client.get(url, {"audience": ingested.pk, "ingest_status": "duplicate"})

    assert "12345" in searched and "+5511912345678" not in searched
    assert filtered.context["cl"].result_count == 2
    assert "someone-else" not in client.get(url).content.decode()


def test_an_opt_out_added_by_staff_is_stored_in_e164(client, staff, org):
    response = client.post(
        reverse("admin:audiences_optout_add"),
        {"organization": org.pk, "phone_e164": "+44 (0)7400 123456", "scope": "all", "note": ""},
    )

    assert response.status_code == 302
    opt_out = OptOut.objects.get()
    assert (opt_out.phone_e164, opt_out.source) == ("+447400123456", "manual")


def test_an_opt_out_that_is_not_a_phone_is_refused(client, staff, org):
    response = client.post(
        reverse("admin:audiences_optout_add"),
        {"organization": org.pk, "phone_e164": "call me", "scope": "all", "note": ""},
    )

    assert response.status_code == 200
    assert "Not a phone number" in response.content.decode()
    assert not OptOut.objects.exists()


def test_lead_events_are_listed_and_searchable(client, staff, org):
    LeadEventFactory(organization=org, phone_e164="+447400123456", event_type="purchase")
    LeadEventFactory(organization=org, phone_e164="+447400654321", event_type="webinar")

    response = client.get(reverse("admin:audiences_leadevent_changelist"), {"q": "webinar"})

    assert response.context["cl"].result_count == 1
    assert "+447400654321" in response.content.decode()


def test_deleting_an_audience_confirms_with_counts_and_deletes_its_leads(client, staff, ingested):
    url = reverse("admin:audiences_audience_delete", args=[ingested.pk])

    confirm = client.get(url)
    assert confirm.status_code == 200
    assert f"{ingested.total_rows}" in confirm.content.decode()  # a count, not a row per lead

    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not Audience.objects.filter(pk=ingested.pk).exists()
    assert not Lead.objects.filter(audience_id=ingested.pk).exists()


def test_an_audience_a_live_campaign_uses_is_protected_from_deletion(client, staff, ingested):
    campaign = CampaignFactory(organization=ingested.organization, status="scheduled")
    campaign.audiences.add(ingested)
    url = reverse("admin:audiences_audience_delete", args=[ingested.pk])

    page = client.post(url, {"post": "yes"}).content.decode()

    assert f"used by campaign(s) {campaign.pk}" in page
    assert Audience.objects.filter(pk=ingested.pk).exists()
