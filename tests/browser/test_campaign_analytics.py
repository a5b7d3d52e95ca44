"""A marketer watches a send fire on the campaign page: progress moves without a reload while
the sandbox delivers, and the funnel chart ends with the recipients' real statuses."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from campaigns import services
from campaigns.models import Campaign, Send, SendRecipient
from config.management.demo import MARKETING_PARAMETERS
from messaging.models import Category
from tests.factories import CampaignFactory, SendFactory
from tests.support import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

FIRE_IN = dt.timedelta(seconds=2)  # in the future when scheduled; the engine starts later
RATE = 4  # messages per second: the demo audience's 18 marketing recipients take ~4.5 s
FUNNEL = ["queued", "sent", "delivered", "read"]
OUTCOMES = ["failed", "skipped", "unknown"]


def campaign_firing_soon(demo) -> tuple[Campaign, Send]:
    """A scheduled campaign of the demo organization whose one marketing send fires soon."""
    campaign = CampaignFactory(
        organization=demo.organization,
        name="Flash sale",
        whatsapp_number=demo.whatsapp_number,
        product_policy_confirmed=True,
    )
    campaign.audiences.add(demo.audience)
    send = SendFactory(
        campaign=campaign,
        name="Flash sale",
        category=Category.MARKETING,
        template=demo.organization.message_templates.get(category=Category.MARKETING),
        parameter_mapping=MARKETING_PARAMETERS,
        max_messages_per_second=RATE,
        scheduled_for=timezone.now() + FIRE_IN,
    )
    services.transition_campaign(campaign, "schedule")
    return campaign, send


def updated_at(page) -> str | None:
    return page.get_attribute("#campaign-analytics", "data-updated-at")


def wait_for_new_update(page, previous: str | None) -> str:
    """Block until the page's own polling applied a progress answer newer than `previous`."""
    page.wait_for_function(
        "previous => { const at = document.getElementById('campaign-analytics')"
        ".dataset.updatedAt; return at && at !== previous; }",
        arg=previous,
    )
    return updated_at(page)


def chart_data(page, canvas_selector: str) -> list[int]:
    return page.eval_on_selector(
        canvas_selector, "canvas => Chart.getChart(canvas).data.datasets[0].data"
    )


def test_a_firing_send_updates_live_and_ends_in_its_funnel_chart(staff_page, demo, engine):
    page = staff_page
    campaign, send = campaign_firing_soon(demo)

    page.goto(f"/admin/campaigns/campaign/{campaign.pk}/change/")
    box = page.locator(f'.send-analytics[data-send-id="{send.pk}"]')
    label = box.locator(".send-progress-label")
    expect(label).to_have_text("0%")
    next_send = page.locator(".campaign-summary .campaign-next")
    expect(next_send).to_contain_text("Next send, Flash sale:")
    page.evaluate("window.notReloaded = true")  # gone if anything reloads the page
    page.screenshots("before-fire")
    engine.start()  # beat and the worker pick the due send up: it fires now

    # Every answer of the progress view stamps the section; the label follows the sandbox.
    first = wait_for_new_update(page, updated_at(page))
    wait_for_new_update(page, first)
    page.wait_for_function(
        "() => document.querySelector('.send-analytics progress.send-progress').value > 0"
    )
    page.screenshots("firing")
    expect(label).to_have_text("100%", timeout=60_000)
    expect(box.locator("progress.send-progress")).to_have_js_property("value", 1)
    expect(next_send).to_have_text("No send is waiting to fire.")  # it fired: none is next

    # Status webhooks flow back through the live server; the page keeps polling meanwhile.
    recipients = SendRecipient.objects.filter(send=send)
    total = recipients.count()
    assert total == 18  # the demo's UK and Brazilian leads; US numbers are not for marketing
    wait_until(
        lambda: recipients.filter(status=SendRecipient.Status.READ).count() == total, timeout=60
    )
    expect(box.locator('[data-count="read"]')).to_have_text(str(total))
    for canvas in (box.locator("canvas.funnel-chart"), page.locator("#campaign-funnel")):
        expect(canvas).to_have_attribute("data-chart-ready", "1")
    page.screenshots("funnel")

    counts = dict.fromkeys(FUNNEL + OUTCOMES, 0) | {"read": total}
    for status, count in counts.items():
        expect(box.locator(f'[data-count="{status}"]')).to_have_text(str(count))
    reached = [int(box.locator(f'[data-reached="{status}"]').inner_text()) for status in FUNNEL]
    assert reached == [total] * len(FUNNEL)
    expected_bars = reached + [counts[status] for status in OUTCOMES]
    send_canvas = f'.send-analytics[data-send-id="{send.pk}"] canvas.funnel-chart'
    page.wait_for_function(
        "([selector, bars]) => JSON.stringify(Chart.getChart(document.querySelector(selector))"
        ".data.datasets[0].data) === JSON.stringify(bars)",
        arg=[send_canvas, expected_bars],
    )
    assert chart_data(page, "#campaign-funnel") == expected_bars  # the campaign's only send

    # The status, the lock notice, the action buttons and the send's Progress field above and
    # below the analytics follow too: a finished campaign offers no Pause or Cancel.
    campaign_status = page.locator(".form-row.field-status:not(.field-name) .readonly")
    expect(campaign_status).to_have_text("Completed")
    expect(page.locator("[data-campaign-status]")).to_have_text("completed")
    expect(page.locator("[data-transition]")).to_have_count(0)
    expect(page.locator(".inline-related .fieldBox.field-status .readonly")).to_have_text(
        "Completed"
    )
    expect(page.locator(".field-delivery .readonly")).to_contain_text(
        f"100% of {total} recipients done"
    )
    page.screenshots("completed")
    assert page.evaluate("window.notReloaded") is True
    assert Send.objects.get(pk=send.pk).status == Send.Status.COMPLETED
