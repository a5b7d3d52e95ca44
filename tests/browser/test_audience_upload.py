"""A marketer uploads a CSV in the audience admin and watches its ingest finish."""

import pytest
from playwright.sync_api import expect

from audiences.models import Audience
from tests.audiences.helpers import mixed_csv

pytestmark = pytest.mark.django_db(transaction=True)

EXPECTED_COUNTS = {
    "ok": "6",
    "invalid_phone": "2",
    "duplicate": "2",
    "ineligible_geo": "1",
    "limited_reporting": "3",
}


def test_an_uploaded_csv_is_ingested_with_live_progress_and_counts(staff_page, demo, engine):
    page = staff_page
    page.goto("/admin/audiences/audience/add/")
    page.select_option("#id_organization", str(demo.organization.pk))
    page.fill("#id_name", "Webinar signups")
    page.set_input_files(
        "#id_file", files=[{"name": "signups.csv", "mimeType": "text/csv", "buffer": mixed_csv()}]
    )
    page.select_option("#id_default_region", "BR")
    page.screenshots("upload-form")
    page.click("[name=_continue]")

    # The engine is not started yet: the upload waits in the queue and the page says so.
    panel = page.locator("#audience-ingest")
    expect(panel.locator("[data-field=status_display]")).to_have_text(Audience.Status.PENDING.label)
    expect(panel.locator("[data-field=progress]")).to_have_text("0%")
    page.screenshots("pending")

    # The worker ingests it; the page's own polling shows the result, no reload by the test.
    engine.start()
    expect(panel.locator("[data-field=status_display]")).to_have_text(Audience.Status.READY.label)
    expect(panel.locator("[data-field=progress]")).to_have_text("100%")
    expect(panel.locator("progress")).to_have_attribute("value", "100")
    for status, count in EXPECTED_COUNTS.items():
        expect(panel.locator(f'[data-count="{status}"]')).to_have_text(count)
    expect(panel.locator("#audience-rejects")).to_contain_text("5 rejected rows")
    page.screenshots("ingested")

    audience = Audience.objects.get(name="Webinar signups")
    assert (audience.organization, audience.status) == (demo.organization, Audience.Status.READY)
