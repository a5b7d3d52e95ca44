"""The marketer's everyday tools in a real browser (issue 15.1 and 15.5): a test send to a
staff phone with its live status, the campaign list's figures while a send fires, and the
recipient list's contact, message, timeline and failure reason after it."""

from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from campaigns.models import Send, SendRecipient, TestPhone
from config.management.demo import MARKETING_PARAMETERS
from messaging.models import Category
from tests.browser.conftest import browser_page, log_in
from tests.browser.test_campaign_analytics import campaign_firing_soon
from tests.factories import CampaignFactory, SendFactory
from tests.support import STAFF_PHONE, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def demo_draft_send(demo) -> Send:
    """A marketing send of a draft campaign to the demo audience: it never fires by itself."""
    campaign = CampaignFactory(
        organization=demo.organization, name="Draft", whatsapp_number=demo.whatsapp_number
    )
    campaign.audiences.add(demo.audience)
    return SendFactory(
        campaign=campaign,
        category=Category.MARKETING,
        template=demo.organization.message_templates.get(category=Category.MARKETING),
        parameter_mapping=MARKETING_PARAMETERS,
    )


def test_a_test_send_shows_the_wamid_then_metas_refusal_in_plain_words(
    staff_page, demo, engine, sandbox
):
    page = staff_page
    send = demo_draft_send(demo)
    TestPhone.objects.create(
        organization=demo.organization, phone_e164=STAFF_PHONE, label="My phone"
    )
    engine.start()  # status webhooks of the test send reach the live server
    page.goto(reverse("admin:campaigns_testsend_send", args=[send.pk]))
    expect(page.locator("#id_phone")).to_contain_text(STAFF_PHONE)
    page.screenshots("form")

    page.select_option("#id_phone", index=0)
    page.click("#test-send-form [type=submit]")

    expect(page.locator("#test-send-wamid")).to_contain_text("wamid.")
    expect(page.locator("#test-send-body")).to_contain_text("Hi ")
    expect(page.locator("#test-send-body")).not_to_contain_text("{{")
    page.screenshots("sent")
    # The sandbox's delivered and read webhooks move the status without a reload.
    page.evaluate("window.notReloaded = true")
    expect(page.locator("#test-send-status")).to_have_text("read")
    assert page.evaluate("window.notReloaded") is True
    page.screenshots("read-live")

    sandbox.configure(ratio_permanent=1.0, permanent_code=131026)
    page.click("#test-send-form [type=submit]")

    expect(page.locator("#test-send-status")).to_have_text("failed")
    error = page.locator("#test-send-error")
    expect(error).to_contain_text("The message could not be delivered")
    expect(error).to_contain_text("131026")
    expect(page.locator("#test-send-wamid")).to_have_text("—")
    page.screenshots("refused-in-plain-words")
    assert not SendRecipient.objects.filter(send=send).exists()  # no recipient touched


SETTLED = [SendRecipient.Status.SENT, SendRecipient.Status.DELIVERED, SendRecipient.Status.READ]
VIEWER_ZONE = "Asia/Tokyo"  # the viewer's browser: neither UTC nor a send's zone


@pytest.fixture
def tokyo_staff_page(browser, live_server, request, demo):
    """The demo staff user in a browser set to Tokyo time, wide enough for the whole list."""
    with browser_page(
        browser,
        live_server.url,
        request,
        timezone_id=VIEWER_ZONE,
        locale="en-US",
        viewport={"width": 1800, "height": 900},
    ) as page:
        log_in(page, demo.admin_username, demo.admin_password)
        yield page


def test_the_campaign_list_then_the_recipient_list_show_a_firing_sends_figures(
    tokyo_staff_page, demo, engine
):
    page = tokyo_staff_page
    campaign, send = campaign_firing_soon(demo)
    Send.objects.create(  # the send after it, a year on in another zone
        campaign=campaign,
        position=1,
        name="Reminder",
        local_date=send.local_date.replace(year=send.local_date.year + 1),
        local_time=send.local_time.replace(second=0, microsecond=0),
        time_zone="America/Sao_Paulo",
        scheduled_for=send.scheduled_for.replace(year=send.scheduled_for.year + 1),
        category=send.category,
        template=send.template,
        parameter_mapping=send.parameter_mapping,
    )
    list_url = reverse("admin:campaigns_campaign_changelist")
    page.goto(list_url)
    row = page.locator("#result_list tbody tr", has_text=campaign.name)
    headers = page.locator("#result_list thead th").all_text_contents()
    for column in ["Status", "Next send", "Recipients", "Sent", "Delivered", "Read", "Failed"]:
        assert column in [h.strip() for h in headers], headers
    # The send's own local time and zone (the demo send fires in UTC), then the viewer's.
    next_send = row.locator(".field-next_send_at")
    expect(next_send).to_contain_text(f"{send.local_date} {send.local_time:%H:%M} UTC")
    tokyo = send.scheduled_for.astimezone(ZoneInfo(VIEWER_ZONE))
    expect(row.locator("time.viewer-time")).to_have_text(
        f"{tokyo:%m/%d/%Y, %I:%M %p} your time ({VIEWER_ZONE})"
    )
    page.screenshots("list-before-fire")

    engine.start()
    recipients = SendRecipient.objects.filter(send=send)
    # Firing, with a few sent (18 recipients at 4 a second: a bar for about four seconds).
    wait_until(lambda: recipients.filter(status__in=SETTLED).count() >= 2, timeout=30)
    page.goto(list_url)
    expect(row.locator(".field-status")).to_have_text("Running")
    expect(row.locator(".field-progress progress")).to_be_visible()
    # The next send is now the later one, in its own zone and the viewer's.
    expect(row.locator(".field-next_send_at")).to_contain_text("America/Sao_Paulo")
    page.screenshots("list-running-with-progress-bar")

    wait_until(
        lambda: recipients.filter(status=SendRecipient.Status.READ).count() == 18, timeout=60
    )
    page.goto(list_url)
    expect(row.locator(".field-read")).to_have_text("18")
    expect(row.locator(".field-read_rate")).to_have_text("100%")
    page.screenshots("list-after-reads")

    lead = recipients.select_related("lead").order_by("id").first().lead
    page.goto(reverse("admin:campaigns_sendrecipient_changelist") + f"?send__id__exact={send.pk}")
    recipient_row = page.locator("#result_list tbody tr", has_text=lead.phone_e164)
    expect(recipient_row.locator(".field-contact")).to_contain_text(lead.first_name)
    coupon = lead.variables["coupon"]
    expect(recipient_row.locator(".recipient-message")).to_have_text(
        f"Hi {lead.first_name}, use code {coupon} for 20% off"
    )
    steps = recipient_row.locator(".recipient-step")
    expect(steps).to_have_count(4)
    assert [s.get_attribute("data-step") for s in steps.all()] == [
        "queued",
        "sent",
        "delivered",
        "read",
    ]
    page.screenshots("recipient-list")
