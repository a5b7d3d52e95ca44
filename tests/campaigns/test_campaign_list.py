"""The campaign list (issue 15.5): per campaign its status, next send (its local time, and
the viewer's), recipients, sent / delivered / read / failed, the read rate and a progress bar
while it runs, from one subquery per listed campaign."""

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaigns.models import Campaign, Send, SendRecipient
from tests.factories import (
    CampaignFactory,
    OrganizationFactory,
    SendFactory,
    SendRecipientFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
Status = SendRecipient.Status
LIST_URL = reverse("admin:campaigns_campaign_changelist")


def row_of(html: str, name: str) -> list[str]:
    """The list's cells (text only) in the row of the campaign named `name`."""
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S):
        if f">{name}</a>" in row:
            cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
            return [
                re.sub(r"<[^>]+>", " ", c).split()
                and " ".join(re.sub(r"<[^>]+>", " ", c).split())
                or ""
                for c in cells
            ]
    raise AssertionError(f"no row for {name}")


@pytest.fixture
def running():
    campaign = CampaignFactory(name="Spring sale", status=Campaign.Status.RUNNING)
    send = SendFactory(campaign=campaign, status=Send.Status.SENDING)
    counts = {
        Status.QUEUED: 2,
        Status.SENT: 3,
        Status.DELIVERED: 2,
        Status.READ: 2,
        Status.FAILED: 1,
    }
    for status, n in counts.items():
        SendRecipientFactory.create_batch(n, send=send, status=status)
    # Read in the UK, where Meta reports no reads: left out of the read rate.
    SendRecipientFactory(send=send, status=Status.DELIVERED, limited_reporting=True)
    SendFactory(
        campaign=campaign,
        local_date=dt.date(2031, 3, 1),
        local_time=dt.time(10, 0),
        time_zone="Europe/London",
        scheduled_for=dt.datetime(2031, 3, 1, 10, 0, tzinfo=dt.UTC),
        position=1,
    )
    return campaign


def test_each_campaign_shows_its_figures_and_a_bar_while_it_runs(client, running):
    client.force_login(UserFactory(organization=running.organization))

    html = client.get(LIST_URL).content.decode()

    cells = row_of(html, "Spring sale")
    # name, status, number, next send, recipients, sent, delivered, read, failed, rate, progress
    assert cells[2] == "Running"
    assert cells[4].startswith("2031-03-01 10:00 Europe/London 2031-03-01 10:00 UTC")
    assert cells[5:10] == ["11", "8", "5", "2", "1"]
    assert cells[10] == "50%"  # read 2 of the 4 delivered where reads are reported
    assert '<progress value="9" max="11"' in html
    assert cells[11] == "82%"
    assert 'datetime="2031-03-01T10:00:00+00:00"' in html


def test_a_draft_without_recipients_shows_dashes(client):
    draft = CampaignFactory(name="Draft one")
    client.force_login(UserFactory(organization=draft.organization))

    cells = row_of(client.get(LIST_URL).content.decode(), "Draft one")

    assert cells[5:12] == ["0", "0", "0", "0", "0", "—", "—"]


def test_the_lists_queries_do_not_grow_with_its_rows(client, running):
    client.force_login(UserFactory(organization=running.organization))
    client.get(LIST_URL)  # the session and permissions warmed up
    with CaptureQueriesContext(connection) as one_campaign:
        client.get(LIST_URL)
    for n in range(5):
        other = CampaignFactory(organization=running.organization, name=f"Other {n}")
        SendRecipientFactory.create_batch(3, send=SendFactory(campaign=other))

    with CaptureQueriesContext(connection) as six_campaigns:
        html = client.get(LIST_URL).content.decode()

    assert len(six_campaigns) == len(one_campaign)
    assert row_of(html, "Other 4")[5] == "3"


def test_another_organizations_campaigns_are_not_listed(client, running):
    client.force_login(UserFactory(organization=OrganizationFactory()))

    assert "Spring sale" not in client.get(LIST_URL).content.decode()
