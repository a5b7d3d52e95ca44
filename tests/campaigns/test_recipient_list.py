"""The recipient list (a send's per-recipient drill-down) and its CSV export: who the contact
is, the message as it was sent, the status timeline, and why a message failed in plain words
next to Meta's code; one query count per page, one organization's recipients only."""

import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from campaigns import dispatcher
from campaigns import sends as send_lifecycle
from campaigns.feedback import StatusUpdate, ingest_statuses
from campaigns.materializer import materialize_send
from campaigns.models import Campaign, Send, SendRecipient
from tests.factories import (
    AudienceFactory,
    LeadFactory,
    SendFactory,
    SendRecipientFactory,
    UserFactory,
)

Status = SendRecipient.Status
RECIPIENTS_URL = reverse("admin:campaigns_sendrecipient_changelist")
EXPORT_URL = reverse("admin:campaigns_sendrecipient_export")
QUEUED_AT = dt.datetime(2026, 12, 3, 9, 59, 58, tzinfo=dt.UTC)


def exported_rows(response) -> list[dict]:
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def sent_recipient(send, *, first_name="Ann", last_name="Lee", **fields):
    """A row as the dispatcher and Meta's reports leave it: parameters stored, times set."""
    audience = AudienceFactory(organization=send.campaign.organization)
    lead = LeadFactory(audience=audience, first_name=first_name, last_name=last_name)
    row = SendRecipientFactory(send=send, lead=lead, phone_e164=lead.phone_e164, **fields)
    SendRecipient.objects.filter(pk=row.pk).update(queued_at=QUEUED_AT)  # auto_now_add
    row.refresh_from_db()
    return row


@pytest.fixture
def fired_send():
    """A completed send whose template said "Hi {{1}}, {{2}} off!" when it fired (it has
    been edited since): one recipient read it, one failed with 131026."""
    send = SendFactory(
        status=Send.Status.COMPLETED,
        template__body_text="Hello {{1}}, now {{2}} off!",
        template_body="Hi {{1}}, {{2}} off!",
    )
    at = QUEUED_AT + dt.timedelta(seconds=2)
    sent_recipient(
        send,
        status=Status.READ,
        parameters=["Ann", "20%"],
        wamid="wamid.ann",
        sent_at=at,
        delivered_at=at + dt.timedelta(seconds=1),
        read_at=at + dt.timedelta(minutes=5),
    )
    sent_recipient(
        send,
        first_name="Bob",
        last_name="",
        status=Status.FAILED,
        parameters=["Bob", "10%"],
        error_code="131026",
        error_title="Message undeliverable",
        failed_at=at,
    )
    return send


@pytest.fixture
def marketer(client, fired_send):
    client.force_login(UserFactory(organization=fired_send.campaign.organization))
    return client


@pytest.fixture
def other_organizations_send():
    send = SendFactory(status=Send.Status.COMPLETED, template_body="Secret {{1}}")
    sent_recipient(send, first_name="Eve", status=Status.SENT, parameters=["offer"])
    return send


# --- The list -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_list_shows_the_contact_the_message_as_sent_the_timeline_and_why(marketer, fired_send):
    response = marketer.get(RECIPIENTS_URL, {"send__id__exact": fired_send.pk})

    assertContains(response, "Ann Lee")
    # The body as it was when the send fired, not the template's current text.
    assertContains(response, '<div class="recipient-message">Hi Ann, 20% off!</div>', html=True)
    assertContains(response, '<div class="recipient-message">Hi Bob, 10% off!</div>', html=True)
    assertNotContains(response, "Hello Ann")
    html = response.content.decode()
    ann_steps = [
        ("queued", "2026-12-03 09:59:58"),
        ("sent", "10:00:00"),
        ("delivered", "10:00:01"),
        ("read", "10:05:00"),
    ]
    timeline = " → ".join(
        f'<span class="recipient-step" data-step="{step}">{step} '
        f'<time datetime="{{}}">{shown}</time></span>'
        for step, shown in ann_steps
    )
    row = SendRecipient.objects.get(send=fired_send, status=Status.READ)
    moments = [row.queued_at, row.sent_at, row.delivered_at, row.read_at]
    assert timeline.format(*(moment.isoformat() for moment in moments)) in html
    assert 'data-step="failed">failed <time' in html
    # Meta's code, and next to it what it means.
    assertContains(response, "131026")
    assertContains(response, "The message could not be delivered: the phone may not use WhatsApp")


@pytest.mark.django_db
def test_a_row_never_on_the_wire_has_no_message_and_a_skip_says_why(marketer, fired_send):
    sent_recipient(
        fired_send,
        first_name="Cy",
        status=Status.SKIPPED,
        skip_reason=SendRecipient.SkipReason.OPTED_OUT,
        error_title=SendRecipient.SkipReason.OPTED_OUT.label,
    )

    response = marketer.get(RECIPIENTS_URL, {"send__id__exact": fired_send.pk, "q": ""})

    assertContains(response, "Opted out before the send")
    (cy,) = [
        r
        for r in exported_rows(marketer.get(EXPORT_URL, {"send__id__exact": fired_send.pk}))
        if r["contact_name"] == "Cy Lee"
    ]
    assert (cy["message"], cy["failure_reason"]) == ("", "Opted out before the send")


def queries_for(client, query) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(RECIPIENTS_URL, query)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.django_db
def test_a_page_of_the_list_costs_the_same_queries_for_2_rows_or_30(marketer, fired_send):
    query = {"send__id__exact": fired_send.pk}
    two = queries_for(marketer, query)
    for n in range(28):
        sent_recipient(fired_send, first_name=f"Lead{n}", status=Status.SENT, parameters=["x", "y"])

    assert queries_for(marketer, query) == two


@pytest.mark.django_db
def test_another_organizations_recipients_never_show(marketer, other_organizations_send):
    response = marketer.get(RECIPIENTS_URL)

    assertContains(response, "Ann Lee")
    assertNotContains(response, "Eve")
    assertNotContains(response, "Secret")
    filtered = {"send__id__exact": other_organizations_send.pk}
    assert "Eve" not in marketer.get(RECIPIENTS_URL, filtered).content.decode()


# --- The export ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_export_carries_the_lists_columns(marketer, fired_send):
    rows = exported_rows(marketer.get(EXPORT_URL, {"send__id__exact": fired_send.pk}))

    by_name = {row["contact_name"]: row for row in rows}
    assert set(by_name) == {"Ann Lee", "Bob"}
    ann, bob = by_name["Ann Lee"], by_name["Bob"]
    assert ann["message"] == "Hi Ann, 20% off!"
    assert (ann["status"], ann["failure_reason"], ann["error_code"]) == ("read", "", "")
    assert ann["queued_at"] == "2026-12-03T09:59:58+00:00"
    assert (ann["sent_at"], ann["delivered_at"]) == (
        "2026-12-03T10:00:00+00:00",
        "2026-12-03T10:00:01+00:00",
    )
    assert ann["read_at"] == "2026-12-03T10:05:00+00:00"
    assert bob["message"] == "Hi Bob, 10% off!"
    assert (bob["error_code"], bob["error_title"]) == ("131026", "Message undeliverable")
    assert bob["failure_reason"].startswith("The message could not be delivered")
    assert bob["failed_at"] == "2026-12-03T10:00:00+00:00"


@pytest.mark.django_db
def test_the_export_never_carries_another_organizations_recipients(
    marketer, fired_send, other_organizations_send
):
    rows = exported_rows(marketer.get(EXPORT_URL))

    assert {row["contact_name"] for row in rows} == {"Ann Lee", "Bob"}
    assert "Secret offer" not in {row["message"] for row in rows}
    filtered = {"send__id__exact": other_organizations_send.pk}
    assert marketer.get(EXPORT_URL, filtered).status_code == 404


# --- Through the engine -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_engine")
def test_the_dispatcher_stores_what_each_recipient_was_sent(
    sandbox, number, marketing_template, testable_send, client
):
    campaign = testable_send.campaign
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    Send.objects.filter(pk=testable_send.pk).update(
        scheduled_for=timezone.now() + dt.timedelta(seconds=1)
    )
    materialize_send(testable_send.pk)
    Send.objects.filter(pk=testable_send.pk).update(scheduled_for=timezone.now())
    assert send_lifecycle.start_due_sends() == [testable_send.pk]
    dispatcher.dispatch_send(testable_send.pk)
    # Meta's template changes afterwards (a later sync): what was sent stays what it was.
    marketing_template.body_text = "Bye {{1}}"
    marketing_template.save()
    ann = SendRecipient.objects.get(send=testable_send, lead__first_name="Ann")
    ingest_statuses(
        [
            StatusUpdate(number.phone_number_id, ann.wamid, status, timezone.now())
            for status in ("delivered", "read")
        ]
    )

    client.force_login(UserFactory(organization=campaign.organization))
    rows = exported_rows(client.get(EXPORT_URL, {"send__id__exact": testable_send.pk}))

    messages = {row["contact_name"]: row["message"] for row in rows}
    assert messages == {"Ann": "Hi Ann, C0 off!", "Bob": "Hi Bob, C1 off!"}
    assert sandbox.requests()["requests"][0]["parameters"] in (["Ann", "C0"], ["Bob", "C1"])
    (ann_row,) = [row for row in rows if row["contact_name"] == "Ann"]
    assert ann_row["status"] == "read"
    assert all(ann_row[f"{step}_at"] for step in ("queued", "sent", "delivered", "read"))


@pytest.mark.django_db
def test_the_message_as_sent_carries_the_header_and_url_buttons_as_they_were_then(
    marketer, fired_send
):
    components = [
        {"type": "HEADER", "format": "TEXT", "text": "Sale for {{1}}"},
        {"type": "BODY", "text": "Hi {{1}}, {{2}} off!"},
        {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Shop", "url": "https://s/{{1}}"}]},
    ]
    send = SendFactory(
        campaign=fired_send.campaign,
        status=Send.Status.COMPLETED,
        template_body="Hi {{1}}, {{2}} off!",
        template_components=components,
    )
    sent_recipient(send, first_name="Cy", status=Status.SENT, parameters=["Cy", "5%", "CY", "C9"])

    rows = exported_rows(marketer.get(EXPORT_URL, {"send__id__exact": send.pk}))

    assert [row["message"] for row in rows] == [
        "header: Sale for CY\nHi Cy, 5% off!\nbutton Shop: https://s/C9"
    ]
    response = marketer.get(RECIPIENTS_URL, {"send__id__exact": send.pk})
    assertContains(response, "header: Sale for CY")
