"""Test phones and the test-send page in the admin (issue 15.1), over HTTP as a marketer
uses them; the rules: tests/campaigns/test_test_sends.py."""

import pytest
from django.urls import reverse

from campaigns.models import TestPhone, TestSend
from tests.factories import OrganizationFactory, UserFactory
from tests.support import STAFF_PHONE

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer(client, testable_send):
    client.force_login(UserFactory(organization=testable_send.campaign.organization))
    return client


def page_url(send):
    return reverse("admin:campaigns_testsend_send", args=[send.pk])


def test_the_editor_links_each_send_to_its_test_page(marketer, testable_send):
    editor = reverse("admin:campaigns_campaign_change", args=[testable_send.campaign.pk])

    assert page_url(testable_send) in marketer.get(editor).content.decode()


def test_the_page_sends_now_and_shows_metas_answer(marketer, testable_send, sandbox):
    phone = TestPhone.objects.get()
    page = marketer.get(page_url(testable_send))
    assert STAFF_PHONE in page.content.decode()

    answer = marketer.post(page_url(testable_send), {"phone": phone.pk, "lead_id": ""})

    [request] = sandbox.requests()["requests"]
    html = answer.content.decode()
    assert request["wamid"] in html
    assert "Hi Ann, C0 off!" in html
    test_send = TestSend.objects.get()
    assert reverse("admin:campaigns_testsend_state", args=[test_send.pk]) in html
    state = marketer.get(reverse("admin:campaigns_testsend_state", args=[test_send.pk])).json()
    assert (state["status"], state["wamid"]) == ("sent", request["wamid"])


def test_a_refusal_is_shown_and_nothing_is_sent(marketer, testable_send, sandbox):
    testable_send.template.status = "REJECTED"
    testable_send.template.save()

    answer = marketer.post(
        page_url(testable_send), {"phone": TestPhone.objects.get().pk, "lead_id": ""}
    )

    assert "is REJECTED, not APPROVED" in answer.content.decode()
    assert sandbox.requests()["count"] == 0


def test_an_unknown_lead_is_a_form_error(marketer, testable_send, sandbox):
    answer = marketer.post(
        page_url(testable_send), {"phone": TestPhone.objects.get().pk, "lead_id": "424242"}
    )

    assert "No lead &#x27;424242&#x27; in this organization." in answer.content.decode()
    assert sandbox.requests()["count"] == 0


def test_without_test_phones_the_page_says_where_to_add_one(marketer, testable_send):
    TestPhone.objects.all().delete()

    page = marketer.get(page_url(testable_send)).content.decode()

    assert "no test phones yet" in page
    assert reverse("admin:campaigns_testphone_changelist") in page


def test_another_organizations_send_has_no_test_page(client, testable_send):
    client.force_login(UserFactory(organization=OrganizationFactory()))

    assert client.get(page_url(testable_send)).status_code == 404


@pytest.mark.parametrize(
    ("phone", "error"),
    [
        ("07911 123456", "write the phone with its country code"),
        ("+44 12", "not a valid phone number"),
    ],
)
def test_a_test_phone_must_be_a_valid_international_number(marketer, testable_send, phone, error):
    organization = testable_send.campaign.organization

    answer = marketer.post(
        reverse("admin:campaigns_testphone_add"),
        {"organization": organization.pk, "phone_e164": phone, "label": "Ana"},
    )

    assert error in answer.content.decode()
    assert TestPhone.objects.count() == 1


def test_a_test_phone_is_stored_in_e164_and_an_eleventh_is_refused(marketer, testable_send):
    organization = testable_send.campaign.organization
    add = reverse("admin:campaigns_testphone_add")

    marketer.post(add, {"organization": organization.pk, "phone_e164": "+44 7911 123457"})
    assert TestPhone.objects.filter(phone_e164="+447911123457").exists()
    for n in range(8):
        TestPhone.objects.create(organization=organization, phone_e164=f"+4479111{n:05d}")
    answer = marketer.post(add, {"organization": organization.pk, "phone_e164": "+447911199999"})

    assert "at most 10 test phones" in answer.content.decode()
    assert TestPhone.objects.count() == 10
