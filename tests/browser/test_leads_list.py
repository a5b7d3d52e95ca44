"""The leads list fits a 1,400 px window: no column cut off, none squeezed into tall rows."""

import pytest
from playwright.sync_api import expect

from audiences.models import Lead
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_leads_list_fits_a_1400_px_window(staff_page, demo):
    page = staff_page
    # A lead with long values, as partners' CSVs have them, on row 1,000,000 of its file.
    LeadFactory(
        audience=demo.audience,
        row_number=1_000_000,
        external_id="crm-0000000000-" + "x" * 40,
        email="a.very.long.address.of.someone@subdomain.example-company.com",
        first_name="Maximiliana",
        last_name="Vandenberghe-Oosterhuis",
        phone_raw="+44 (0) 7400 123 456 ext. 99",
        phone_e164="+447400123456",
        ingest_status=Lead.IngestStatus.OK,
    )
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto("/admin/audiences/lead/")
    table = page.locator("#result_list")
    expect(table).to_be_visible()
    page.screenshots("leads-1400")

    fits = page.evaluate(
        """() => {
            const table = document.getElementById("result_list");
            const row = table.tBodies[0].rows[0];
            const line = parseFloat(getComputedStyle(row.cells[1]).lineHeight) || 20;
            return {
                pageWidth: document.documentElement.scrollWidth,
                window: window.innerWidth,
                tableRight: table.getBoundingClientRect().right,
                tallest: Math.max(...[...table.tBodies[0].rows].map(r => r.getBoundingClientRect().height)),
                line,
                cutPhones: [...table.querySelectorAll("td.field-phone, th.field-row_number")]
                    .filter(c => c.scrollWidth > c.clientWidth).map(c => c.textContent),
            };
        }"""
    )
    assert fits["pageWidth"] <= fits["window"], fits  # nothing cut off or scrolled sideways
    assert fits["tableRight"] <= fits["window"], fits
    assert fits["tallest"] < 2.2 * fits["line"] + 12, fits  # one line of text per row
    assert fits["cutPhones"] == []  # phones and row numbers are never cut; long text is
    email = page.locator("td.field-email", has_text="a.very")
    assert email.get_attribute("title") == (
        "a.very.long.address.of.someone@subdomain.example-company.com"
    )  # shown whole on hover
