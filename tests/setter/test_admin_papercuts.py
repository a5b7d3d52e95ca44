"""Newcomer papercuts in the admin, each checked through the test client."""

import pytest
from django.urls import reverse

from audiences import services as audience_services
from tests.audiences.helpers import mixed_csv, upload
from tests.factories import OrganizationFactory, UserFactory

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
