"""A marketer builds a campaign with two sends in the editor and schedules it."""

import datetime as dt
import zoneinfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from campaigns.models import Campaign
from tests.browser.send_editor import choose_parameter

pytestmark = pytest.mark.django_db(transaction=True)

ZONE = "Europe/London"


def add_send(page, index, *, name, local_date, local_time, category, template, mapping):
    """Click "Add another Send" and fill the new inline form."""
    page.click("#sends-group .add-row a")
    prefix = f"#id_sends-{index}-"
    expect(page.locator(prefix + "name")).to_be_visible()
    page.fill(prefix + "position", str(index))
    page.fill(prefix + "name", name)
    page.fill(prefix + "local_date", local_date.isoformat())
    page.fill(prefix + "local_time", local_time)
    page.fill(prefix + "time_zone", ZONE)
    page.select_option(prefix + "category", category)
    page.select_option(prefix + "template", str(template.pk))
    for position, entry in enumerate(mapping, start=1):
        choose_parameter(page, index, position, entry)


def test_a_campaign_with_two_sends_is_created_in_the_editor_and_scheduled(staff_page, demo):
    page = staff_page
    templates = {t.category: t for t in demo.organization.message_templates.all()}
    tomorrow = timezone.now().astimezone(zoneinfo.ZoneInfo(ZONE)).date() + dt.timedelta(days=1)

    page.goto("/admin/campaigns/campaign/add/")
    page.select_option("#id_organization", str(demo.organization.pk))
    page.fill("#id_name", "Autumn launch")
    page.select_option("#id_whatsapp_number", str(demo.whatsapp_number.pk))
    page.select_option("#id_audiences_from", str(demo.audience.pk))
    page.click("#id_audiences_add")
    page.check("#id_product_policy_confirmed")
    add_send(
        page,
        0,
        name="Launch offer",
        local_date=tomorrow,
        local_time="09:30",
        category="MARKETING",
        template=templates["MARKETING"],
        mapping=["first_name", "variables.coupon"],
    )
    add_send(
        page,
        1,
        name="Shipping notice",
        local_date=tomorrow + dt.timedelta(days=1),
        local_time="18:00",
        category="UTILITY",
        template=templates["UTILITY"],
        mapping=["external_id"],
    )
    page.screenshots("editor")
    page.click("[name=_continue]")

    expect(page.locator(".messagelist .success")).to_contain_text("was added successfully")
    campaign = Campaign.objects.get(name="Autumn launch")
    assert campaign.status == Campaign.Status.DRAFT
    page.screenshots("saved-draft")

    page.click("button.campaign-transition[value=schedule]")

    expect(page.locator(".messagelist .success")).to_contain_text("Autumn launch: scheduled.")
    page.screenshots("scheduled")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
    london = zoneinfo.ZoneInfo(ZONE)
    assert [
        (send.name, send.scheduled_for.astimezone(london).replace(tzinfo=None))
        for send in campaign.sends.order_by("position")
    ] == [
        ("Launch offer", dt.datetime.combine(tomorrow, dt.time(9, 30))),
        ("Shipping notice", dt.datetime.combine(tomorrow + dt.timedelta(days=1), dt.time(18))),
    ]
