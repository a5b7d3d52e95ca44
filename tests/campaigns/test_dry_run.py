"""The dry run: who a send would reach and what they would read, before anything is sent."""

import datetime as dt

import pytest
from django.utils import timezone

from audiences.models import Lead, OptOut
from campaigns.materializer import materialize_send, preview_send
from campaigns.models import Campaign, Send, SendRecipient
from tests.factories import (
    AudienceFactory,
    CampaignFactory,
    LeadFactory,
    MessageTemplateFactory,
    OptOutFactory,
    SendFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def draft_send(**fields):
    campaign = CampaignFactory(status=Campaign.Status.DRAFT)
    audience = AudienceFactory(organization=campaign.organization)
    campaign.audiences.add(audience)
    template = MessageTemplateFactory(
        organization=campaign.organization, body_text="Hi {{1}}, use {{2}} today"
    )
    for i, phone in enumerate(["+442079460001", "+442079460002", "+5511912345678"]):
        LeadFactory(
            audience=audience,
            phone_e164=phone,
            first_name=f"Ann{i}",
            variables={"coupon": f"SAVE{i}"},
            limited_reporting=phone.startswith("+44"),
        )
    LeadFactory(
        audience=audience, phone_e164="+12025550143", ingest_status=Lead.IngestStatus.INELIGIBLE_GEO
    )
    OptOutFactory(
        organization=campaign.organization, phone_e164="+442079460002", scope=OptOut.Scope.ALL
    )
    fields.setdefault("parameter_mapping", ["first_name", "variables.coupon"])
    return SendFactory(
        campaign=campaign,
        template=template,
        scheduled_for=timezone.now() + dt.timedelta(days=1),
        **fields,
    )


def test_a_preview_counts_the_recipients_and_renders_their_messages():
    send = draft_send()

    preview = preview_send(send)

    # The US lead (marketing) and the opted-out phone are left out, as materializing would.
    assert preview.recipient_count == 2
    assert preview.limited_reporting_count == 1
    assert [(m.phone_e164, m.text) for m in preview.sample] == [
        ("+442079460001", "Hi Ann0, use SAVE0 today"),
        ("+5511912345678", "Hi Ann2, use SAVE2 today"),
    ]
    assert not SendRecipient.objects.exists()


def test_a_preview_shows_the_header_and_url_button_each_lead_would_get(client):
    send = draft_send(parameter_mapping=["first_name", '"X"', "first_name", "variables.coupon"])
    send.template.components = [
        {"type": "HEADER", "format": "TEXT", "text": "For {{1}}"},
        {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Shop", "url": "https://s/{{1}}"}]},
    ]
    send.template.save()
    client.force_login(UserFactory(organization=send.campaign.organization))

    first = preview_send(send).sample[0]
    page = client.get(f"/admin/campaigns/campaign/{send.campaign_id}/dry-run/")

    assert first.text == "header: For Ann0\nHi Ann0, use X today\nbutton Shop: https://s/SAVE0"
    assert "header: For Ann0<br>Hi Ann0, use X today<br>button Shop: https://s/SAVE0" in (
        page.content.decode()
    )


def test_the_preview_matches_what_materializing_then_does():
    send = draft_send()
    expected = preview_send(send, sample_size=100)
    Campaign.objects.filter(pk=send.campaign_id).update(status=Campaign.Status.SCHEDULED)

    result = materialize_send(send.pk)

    assert result.recipient_count == expected.recipient_count
    assert set(SendRecipient.objects.values_list("phone_e164", flat=True)) == {
        m.phone_e164 for m in expected.sample
    }


def test_a_filtered_send_without_its_filter_event_previews_nobody_and_says_why():
    send = draft_send(audience_filter_mode=Send.AudienceFilterMode.WEBHOOK_FILTERED)

    preview = preview_send(send)

    assert preview.recipient_count == 0
    assert "no filter event arrived" in preview.reason


def test_the_dry_run_page_shows_each_send_and_calls_meta_zero_times(client, sandbox):
    send = draft_send()
    client.force_login(UserFactory(organization=send.campaign.organization))

    page = client.get(f"/admin/campaigns/campaign/{send.campaign_id}/dry-run/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "<strong>2</strong> recipients" in html
    assert "Hi Ann0, use SAVE0 today" in html
    assert "1 in EEA/UK/JP/KR" in html
    assert sandbox.requests()["count"] == 0
    send.refresh_from_db()
    assert send.status == Send.Status.PENDING
    assert not SendRecipient.objects.exists()


def test_a_lead_whose_parameter_would_be_empty_previews_as_skipped(client):
    send = draft_send()
    Lead.objects.filter(phone_e164="+5511912345678").update(variables={"coupon": " "})
    client.force_login(UserFactory(organization=send.campaign.organization))

    preview = preview_send(send)
    page = client.get(f"/admin/campaigns/campaign/{send.campaign_id}/dry-run/").content.decode()

    assert [(m.phone_e164, m.text, m.skipped) for m in preview.sample] == [
        ("+442079460001", "Hi Ann0, use SAVE0 today", ""),
        (
            "+5511912345678",
            "",
            "missing_parameter: Parameter {{2}} (variables.coupon) is empty for this lead",
        ),
    ]
    assert "Skipped — missing_parameter: Parameter {{2}} (variables.coupon)" in page


def test_the_dry_run_of_another_organizations_campaign_is_not_found(client):
    send = draft_send()
    client.force_login(UserFactory(organization=CampaignFactory().organization))

    page = client.get(f"/admin/campaigns/campaign/{send.campaign_id}/dry-run/")

    assert page.status_code in (302, 404)
    assert "SAVE0" not in page.content.decode()


def test_the_campaign_page_links_to_its_dry_run(client):
    send = draft_send()
    client.force_login(UserFactory(organization=send.campaign.organization))

    page = client.get(f"/admin/campaigns/campaign/{send.campaign_id}/change/").content.decode()

    assert f"/admin/campaigns/campaign/{send.campaign_id}/dry-run/" in page
