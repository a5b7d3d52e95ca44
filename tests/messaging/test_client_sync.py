"""Templates and number limits copied from the Graph API; template status webhooks applied."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from messaging import errors
from messaging.models import MessageTemplate, WhatsAppNumber
from messaging.services import apply_template_status_update, sync_number, sync_templates
from tests.factories import MessageTemplateFactory, WhatsAppNumberFactory
from tests.support import META_WEBHOOKS

pytestmark = pytest.mark.django_db

Status = MessageTemplate.Status


def template_status_value(variant: str) -> dict:
    payload = json.loads((META_WEBHOOKS / "template_status_update.json").read_text())[variant]
    return payload["entry"][0]["changes"][0]["value"]


def remote_template(sandbox, number, name, category="MARKETING", status="APPROVED", **extra):
    data = {
        "waba_id": number.waba_id,
        "name": name,
        "language": "en_US",
        "category": category,
        "status": status,
        **extra,
    }
    response = sandbox.session.post(f"{sandbox.url}/_sandbox/templates", json=data, timeout=5)
    response.raise_for_status()
    return response.json()


def test_sync_templates_creates_and_updates_the_organizations_templates(
    sandbox, whatsapp_client, number
):
    stale = MessageTemplateFactory(
        organization=number.organization,
        name="welcome",
        status=Status.PENDING,
        body_text="Hello",
    )
    remote_template(
        sandbox,
        number,
        "welcome",
        components=[
            {"type": "HEADER", "format": "TEXT", "text": "Hi"},
            {"type": "BODY", "text": "Welcome {{1}}, enjoy {{2}}"},
        ],
        id="555",
    )
    remote_template(sandbox, number, "receipt", category="UTILITY", body_text="Paid {{1}}")
    remote_template(sandbox, number, "login_code", category="AUTHENTICATION", body_text="{{1}}")

    counts = sync_templates(number, whatsapp_client).counts

    assert counts == {"created": 1, "updated": 1, "unchanged": 0, "skipped": 1, "removed": 0}
    stale.refresh_from_db()
    assert stale.status == Status.APPROVED
    assert stale.body_text == "Welcome {{1}}, enjoy {{2}}"
    assert stale.parameter_count == 2
    assert stale.meta_template_id == "555"
    assert stale.waba_id == number.waba_id
    assert stale.components[0] == {"type": "HEADER", "format": "TEXT", "text": "Hi"}
    receipt = MessageTemplate.objects.get(organization=number.organization, name="receipt")
    assert (receipt.category, receipt.status, receipt.body_text) == (
        "UTILITY",
        "APPROVED",
        "Paid {{1}}",
    )
    assert sync_templates(number, whatsapp_client).counts["unchanged"] == 2


def test_sync_templates_follows_paging(sandbox, whatsapp_client, number):
    for n in range(120):
        remote_template(sandbox, number, f"t_{n:03d}", body_text="Hi {{1}}")

    assert sync_templates(number, whatsapp_client).counts["created"] == 120


def test_templates_meta_no_longer_lists_are_disabled(sandbox, whatsapp_client, number):
    gone = MessageTemplateFactory(organization=number.organization, waba_id=number.waba_id)

    assert sync_templates(number, whatsapp_client).counts["removed"] == 1

    gone.refresh_from_db()
    assert gone.status == Status.DISABLED


def test_sync_templates_touches_only_the_numbers_organization(sandbox, whatsapp_client, number):
    other = MessageTemplateFactory(name="welcome", status=Status.PENDING)
    remote_template(sandbox, number, "welcome", body_text="Hi {{1}}")

    sync_templates(number, whatsapp_client)

    other.refresh_from_db()
    assert other.status == Status.PENDING
    assert MessageTemplate.objects.filter(name="welcome").count() == 2


def test_sync_with_a_bad_token_changes_nothing(sandbox, whatsapp_client, number):
    remote_template(sandbox, number, "welcome", body_text="Hi {{1}}")
    number.access_token = "revoked"

    with pytest.raises(errors.SendLevelError):
        sync_templates(number, whatsapp_client)

    assert not MessageTemplate.objects.exists()


def test_sync_number_copies_tier_quality_and_throughput(sandbox, whatsapp_client, number):
    sandbox.register_number(
        number, messaging_limit_tier="TIER_10K", quality_rating="YELLOW", throughput_level="HIGH"
    )

    changed = sync_number(number, whatsapp_client)

    number.refresh_from_db()
    assert set(changed) == {"messaging_limit", "quality_rating", "throughput_mps"}
    assert number.messaging_limit == WhatsAppNumber.MessagingLimit.TIER_10K
    assert number.quality_rating == "YELLOW"
    assert number.throughput_mps == 1000
    assert sync_number(number, whatsapp_client) == []


def test_sync_whatsapp_command(sandbox, number):
    remote_template(sandbox, number, "welcome", body_text="Hi {{1}}")
    sandbox.register_number(number, messaging_limit_tier="TIER_UNLIMITED")

    call_command("sync_whatsapp", number.phone_number_id)

    number.refresh_from_db()
    assert number.messaging_limit == WhatsAppNumber.MessagingLimit.TIER_UNLIMITED
    assert MessageTemplate.objects.filter(organization=number.organization, name="welcome").exists()


def test_sync_whatsapp_command_rejects_unknown_numbers(sandbox, number):
    with pytest.raises(CommandError, match="unknown phone_number_id"):
        call_command("sync_whatsapp", "nope")


def test_template_status_webhook_pauses_a_template():
    value = {**template_status_value("approved"), "event": "PAUSED"}
    template = MessageTemplateFactory(meta_template_id=str(value["message_template_id"]))
    unrelated = MessageTemplateFactory()

    assert apply_template_status_update(value) == 1

    template.refresh_from_db()
    unrelated.refresh_from_db()
    assert template.status == Status.PAUSED
    assert unrelated.status == Status.APPROVED


def test_template_status_webhook_rejects_by_name_within_the_waba():
    value = template_status_value("rejected")
    number = WhatsAppNumberFactory()
    ours = MessageTemplateFactory(
        organization=number.organization,
        waba_id=number.waba_id,
        name=value["message_template_name"],
        language=value["message_template_language"],
    )
    other_org = MessageTemplateFactory(
        name=value["message_template_name"], language=value["message_template_language"]
    )

    assert apply_template_status_update(value) == 0
    assert apply_template_status_update(value, waba_id=number.waba_id) == 1

    ours.refresh_from_db()
    other_org.refresh_from_db()
    assert ours.status == Status.REJECTED
    assert other_org.status == Status.APPROVED


def test_flagged_and_unknown_events_change_nothing():
    template = MessageTemplateFactory(meta_template_id="77")

    for event in ["FLAGGED", "SOMETHING_NEW"]:
        value = {"event": event, "message_template_id": 77}
        assert apply_template_status_update(value) == 0

    template.refresh_from_db()
    assert template.status == Status.APPROVED
