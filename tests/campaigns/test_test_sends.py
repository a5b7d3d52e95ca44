"""Test sends (issue 15.1): one message of a testable_send, rendered exactly as a lead would get it,
sent now to a staff member's phone through the same client, endpoint and gates; Meta's answer
is the result; it counts in no analytics and touches no recipient."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from audiences.models import OptOut
from campaigns import testsends
from campaigns.analytics import campaign_analytics
from campaigns.models import SendRecipient, TestPhone
from campaigns.models import TestSend as TestSendRow
from messaging.models import MessageTemplate
from tests.factories import (
    LeadFactory,
    OptOutFactory,
    OrganizationFactory,
)
from tests.support import STAFF_PHONE

pytestmark = pytest.mark.django_db


def test_the_message_is_rendered_for_the_lead_and_sent_now_to_the_test_phone(
    testable_send, sandbox, whatsapp_client
):
    bob = testable_send.campaign.audiences.get().leads.get(first_name="Bob")

    result = testsends.send_test(testable_send, phone=STAFF_PHONE, lead=bob, client=whatsapp_client)

    [request] = sandbox.requests()["requests"]
    assert request["to"].lstrip("+") == STAFF_PHONE.lstrip("+")
    assert request["endpoint"] == "marketing_messages"  # MARKETING goes through MM Lite
    assert request["parameters"] == ["Bob", "C1"]
    assert request["callback_data"] == f"test:{result.pk}"
    assert (result.status, result.wamid) == (TestSendRow.Status.SENT, request["wamid"])
    assert result.body == "Hi Bob, C1 off!"
    assert result.lead == bob


def test_a_test_send_counts_in_no_analytics_and_touches_no_recipient(
    testable_send, whatsapp_client
):
    testsends.send_test(testable_send, phone=STAFF_PHONE, client=whatsapp_client)

    assert not SendRecipient.objects.exists()
    funnel = campaign_analytics(testable_send.campaign).funnel
    assert funnel.progress.total == 0
    assert set(funnel.reached.values()) == {0}
    testable_send.refresh_from_db()
    assert (testable_send.status, testable_send.recipient_count) == ("pending", 0)


def test_without_a_lead_it_renders_for_the_first_lead_the_send_would_reach(
    testable_send, sandbox, whatsapp_client
):
    ann = testable_send.campaign.audiences.get().leads.get(first_name="Ann")
    OptOutFactory(organization=ann.organization, phone_e164=ann.phone_e164)

    result = testsends.send_test(testable_send, phone=STAFF_PHONE, client=whatsapp_client)

    assert result.lead.first_name == "Bob"
    assert sandbox.requests()["requests"][0]["parameters"] == ["Bob", "C1"]
    assert OptOut.objects.count() == 1


def test_meta_refusing_the_message_is_the_result_in_plain_words(
    testable_send, sandbox, whatsapp_client
):
    sandbox.configure(ratio_permanent=1.0, permanent_code=131026)

    result = testsends.send_test(testable_send, phone=STAFF_PHONE, client=whatsapp_client)

    assert result.status == TestSendRow.Status.FAILED
    assert result.error_code == "131026"
    assert "131026" in result.error_title
    assert result.error_title.startswith("The message could not be delivered: the phone may")
    assert testsends.test_send_json(result)["error"] == {
        "code": "131026",
        "title": result.error_title,
    }


def test_a_send_level_refusal_says_what_to_do(testable_send, sandbox, whatsapp_client, number):
    sandbox.register_number(number, access_token="rotated-elsewhere")

    result = testsends.send_test(testable_send, phone=STAFF_PHONE, client=whatsapp_client)

    assert result.status == TestSendRow.Status.FAILED
    assert result.error_code == "190"
    assert "access token expired or was revoked" in result.error_title


@pytest.mark.parametrize(
    ("phone", "message"),
    [
        ("+447911123999", "+447911123999 is not one of your organization's test phones"),
        ("07911 123456", "write the phone with its country code"),
        ("+44 12", "phone: "),
    ],
)
def test_only_the_organizations_test_phones_get_test_sends(
    testable_send, sandbox, whatsapp_client, phone, message
):
    with pytest.raises(testsends.TestSendRefused, match=re.escape(message)) as refused:
        testsends.send_test(testable_send, phone=phone, client=whatsapp_client)

    assert refused.value.field == "phone"
    assert sandbox.requests()["count"] == 0
    assert not TestSendRow.objects.exists()


def test_another_organizations_test_phone_is_not_ours(testable_send, sandbox, whatsapp_client):
    TestPhone.objects.create(organization=OrganizationFactory(), phone_e164="+447911123555")

    with pytest.raises(testsends.TestSendRefused, match="not one of your organization's"):
        testsends.send_test(testable_send, phone="+447911123555", client=whatsapp_client)

    assert sandbox.requests()["count"] == 0


def test_the_sends_gates_are_checked_before_anything_goes(testable_send, sandbox, whatsapp_client):
    MessageTemplate.objects.filter(pk=testable_send.template_id).update(status="PENDING")
    testable_send.refresh_from_db()

    with pytest.raises(testsends.TestSendRefused, match="is PENDING, not APPROVED"):
        testsends.send_test(testable_send, phone=STAFF_PHONE, client=whatsapp_client)

    assert sandbox.requests()["count"] == 0


def test_a_lead_whose_parameter_would_be_empty_is_refused(testable_send, sandbox, whatsapp_client):
    lead = LeadFactory(
        audience=testable_send.campaign.audiences.get(), first_name="", variables={"coupon": "X"}
    )

    with pytest.raises(testsends.TestSendRefused, match=r"Parameter \{\{1\}\}.*is empty"):
        testsends.send_test(testable_send, phone=STAFF_PHONE, lead=lead, client=whatsapp_client)

    assert sandbox.requests()["count"] == 0


def test_an_organization_gets_a_few_test_sends_an_hour(
    testable_send, sandbox, whatsapp_client, settings
):
    settings.TEST_SENDS_PER_HOUR = 2
    start = timezone.now()
    for minutes in (0, 10):
        testsends.send_test(
            testable_send,
            phone=STAFF_PHONE,
            client=whatsapp_client,
            now=start + dt.timedelta(minutes=minutes),
        )
    TestSendRow.objects.filter(created_at__gte=start).update(created_at=start)

    with pytest.raises(testsends.TestSendThrottled, match="made 2 test sends in the last hour"):
        testsends.send_test(
            testable_send,
            phone=STAFF_PHONE,
            client=whatsapp_client,
            now=start + dt.timedelta(minutes=20),
        )

    assert sandbox.requests()["count"] == 2
    later = start + dt.timedelta(minutes=61)
    assert testsends.send_test(
        testable_send, phone=STAFF_PHONE, client=whatsapp_client, now=later
    ).pk


def test_an_organization_keeps_at_most_ten_test_phones(testable_send):
    organization = testable_send.campaign.organization
    for n in range(9):
        testsends.add_test_phone(organization, f"+4479111{n:05d}")

    with pytest.raises(testsends.TestSendRefused, match="at most 10 test phones"):
        testsends.add_test_phone(organization, "+447911199999")
    with pytest.raises(testsends.TestSendRefused, match="already a test phone"):
        testsends.add_test_phone(organization, STAFF_PHONE)
    assert testsends.add_test_phone(OrganizationFactory(), STAFF_PHONE).phone_e164 == STAFF_PHONE
