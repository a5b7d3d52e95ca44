"""A marketer maps a template's parameters with drop-downs, watches the preview follow, and
saves: no JSON typed anywhere (issue 15.4)."""

import datetime as dt

import pytest
from playwright.sync_api import expect

from audiences.models import Lead
from campaigns.eligibility import Eligible
from campaigns.models import Campaign, Send
from tests.browser.send_editor import choose_parameter, parameter

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def draft(demo):
    """A draft campaign of the demo organization with one send (a UTILITY one) already."""
    campaign = Campaign.objects.create(
        organization=demo.organization,
        name="Editor draft",
        whatsapp_number=demo.whatsapp_number,
        product_policy_confirmed=True,
    )
    campaign.audiences.add(demo.audience)
    Send.objects.create(
        campaign=campaign,
        position=3,
        name="Shipping notice",
        local_date=dt.date(2030, 7, 1),
        local_time=dt.time(9),
        time_zone="Europe/London",
        scheduled_for=dt.datetime(2030, 7, 1, 8, tzinfo=dt.UTC),
        category="UTILITY",
        template=demo.organization.message_templates.get(category="UTILITY"),
        parameter_mapping=["external_id"],
    )
    return campaign


def test_parameters_are_mapped_with_drop_downs_and_the_preview_follows(staff_page, demo, draft):
    page = staff_page
    marketing = demo.organization.message_templates.get(category="MARKETING")
    first = Lead.objects.get(pk=Eligible(draft, "MARKETING").first_lead_ids(1)[0])
    row = "#id_sends-1-"

    page.goto(f"/admin/campaigns/campaign/{draft.pk}/change/")
    # The stored send's mapping shows as a drop-down on its column.
    expect(parameter(page, 0, 1).locator("select")).to_have_value("external_id")
    page.click("#sends-group .add-row a")

    # A new send follows the last one, in the zone of the organization's number (+1 555 …).
    expect(page.locator(row + "position")).to_have_value("4")
    expect(page.locator(row + "time_zone")).to_have_value("America/New_York")
    assert page.locator(row + "time_zone").get_attribute("list") == "id_sends-1-time_zone-zones"
    page.fill(row + "name", "Launch offer")
    page.fill(row + "local_date", "2030-06-30")
    page.fill(row + "local_time", "10:00")
    page.fill(row + "time_zone", "Europe/London")
    page.select_option(row + "category", "MARKETING")
    # Only the category's templates are offered.
    offered = page.locator(f"{row}template option:not([disabled])")
    expect(offered).to_have_text(["---------", str(marketing)])

    page.select_option(row + "template", str(marketing.pk))
    expect(page.locator("#sends-1 .send-template-body")).to_have_text(marketing.body_text)
    columns = parameter(page, 1, 2).locator("select option")
    expect(columns).to_contain_text(["first_name", "variables.coupon", "Fixed text…"])
    choose_parameter(page, 1, 1, "first_name")
    preview = page.locator("#sends-1 .send-preview")
    expect(preview.locator(".send-preview-problems")).to_contain_text("Parameter {{2}}: not mapped")
    page.screenshots("first-parameter-chosen")

    choose_parameter(page, 1, 2, "variables.coupon")
    text = preview.locator(".send-preview-text")
    coupon = first.variables["coupon"]
    expect(text).to_have_text(f"Hi {first.first_name}, use code {coupon} for 20% off")
    expect(preview).to_contain_text(first.phone_e164)
    page.screenshots("column-preview")

    choose_parameter(page, 1, 2, '"WELCOME10"')
    expect(text).to_have_text(f"Hi {first.first_name}, use code WELCOME10 for 20% off")
    page.screenshots("fixed-text-preview")
    page.click("[name=_continue]")

    expect(page.locator(".messagelist .success")).to_contain_text("was changed successfully")
    page.screenshots("saved")
    send = draft.sends.get(name="Launch offer")
    assert (send.position, send.time_zone, send.template) == (4, "Europe/London", marketing)
    assert send.parameter_mapping == ["first_name", '"WELCOME10"']
    # Back in the editor, the stored fixed text shows as one.
    expect(parameter(page, 1, 2).locator("input.send-parameter-text")).to_have_value("WELCOME10")
