"""Meta's webhook: the handshake, signatures, every real-shaped payload, delivery
statuses applied monotonically, and replies that opt people out."""

import copy
import hashlib
import hmac
import json
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from audiences.models import Lead, OptOut
from campaigns.models import SendRecipient
from tests.factories import LeadFactory, OptOutFactory, SendFactory, WhatsAppNumberFactory
from tests.support import META_WEBHOOKS

pytestmark = pytest.mark.django_db

# The project's shared corpus, beside the repository (CI has it): every variant is posted too.
SHARED_CORPUS = Path(settings.BASE_DIR).parent / "shared" / "fixtures" / "meta-webhooks" / "pywa"
URL = "/webhooks/whatsapp"
Status = SendRecipient.Status


def fixture(name, variant, folder=META_WEBHOOKS):
    return copy.deepcopy(json.loads((folder / f"{name}.json").read_text())[variant])


def all_fixture_variants(folder=META_WEBHOOKS):
    for path in sorted(folder.glob("*.json")):
        for variant in json.loads(path.read_text()):
            yield pytest.param(path.stem, variant, id=f"{path.stem}-{variant}")


def post(client, payload, secret=None):
    body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    secret = secret or settings.WHATSAPP_APP_SECRET
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return client.post(
        URL, body, content_type="application/json", headers={"X-Hub-Signature-256": signature}
    )


def retarget(payload, *, phone_number_id, **status_fields):
    """Point a fixture at our number (and our recipient's wamid or callback data)."""
    value = payload["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = phone_number_id
    for status in value.get("statuses", []):
        status.update(status_fields)
    return payload


@pytest.fixture
def recipient():
    number = WhatsAppNumberFactory(phone_number_id="1122334455667")
    send = SendFactory(campaign__whatsapp_number=number, campaign__organization=number.organization)
    return SendRecipient.objects.create(
        send=send, phone_e164="+972987654321", status=Status.SENDING, wamid="wamid.xyzxyz"
    )


def test_verification_handshake_echoes_the_challenge(client):
    response = client.get(
        URL,
        {
            "hub.mode": "subscribe",
            "hub.verify_token": settings.WHATSAPP_VERIFY_TOKEN,
            "hub.challenge": "1158201444",
        },
    )
    assert response.status_code == 200
    assert response.content == b"1158201444"


def test_verification_with_a_wrong_token_is_refused(client):
    response = client.get(
        URL, {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"}
    )
    assert response.status_code == 403


@pytest.mark.parametrize("name,variant", list(all_fixture_variants()))
def test_every_real_payload_is_accepted(client, name, variant):
    assert post(client, fixture(name, variant)).status_code == 200


def test_the_repository_holds_the_real_payloads_the_suite_parses():
    """An empty folder would silently turn the corpus test above into no test at all."""
    names = {param.values[0] for param in all_fixture_variants()}
    assert {"message", "message_status", "user_marketing_preferences", "account_update"} <= names


def test_every_payload_of_the_shared_corpus_is_accepted(client):
    """The corpus beside the repository may grow beyond our copy: all of it must parse. CI
    always has it, so there its absence is a failure, never a silently smaller suite."""
    if not SHARED_CORPUS.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and the shared corpus is missing: {SHARED_CORPUS}")
        pytest.skip(f"no shared corpus beside the repository ({SHARED_CORPUS})")
    variants = [param.values for param in all_fixture_variants(SHARED_CORPUS)]
    assert variants
    refused = [
        (name, variant)
        for name, variant in variants
        if post(client, fixture(name, variant, SHARED_CORPUS)).status_code != 200
    ]
    assert refused == []


def test_a_bad_signature_is_refused_and_changes_nothing(client):
    number = WhatsAppNumberFactory(phone_number_id="1122334455667")
    payload = fixture("message", "text")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "STOP"
    retarget(payload, phone_number_id=number.phone_number_id)

    assert post(client, payload, secret="not-the-app-secret").status_code == 401
    unsigned = client.post(URL, json.dumps(payload), content_type="application/json")
    assert unsigned.status_code == 401
    assert not OptOut.objects.exists()


def test_malformed_bodies_and_unknown_numbers_are_acknowledged(client):
    assert post(client, b"{not json").status_code == 200
    assert post(client, {"entry": "nonsense"}).status_code == 200
    assert (
        post(
            client,
            {
                "entry": [
                    {
                        "changes": [
                            {
                                "field": "messages",
                                "value": {"statuses": [{"status": "read", "timestamp": "x"}]},
                            }
                        ]
                    }
                ]
            },
        ).status_code
        == 200
    )
    payload = fixture("message", "text")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "stop"
    assert post(client, payload).status_code == 200
    assert not OptOut.objects.exists()


def test_read_implies_delivered_and_sent(client, recipient):
    post(client, retarget(fixture("message_status", "read"), phone_number_id="1122334455667"))

    recipient.refresh_from_db()
    assert recipient.status == Status.READ
    assert recipient.read_at and recipient.delivered_at and recipient.sent_at


def test_a_late_delivered_or_failed_never_overwrites_read(client, recipient):
    post(client, retarget(fixture("message_status", "read"), phone_number_id="1122334455667"))
    read_at = SendRecipient.objects.get(pk=recipient.pk).read_at

    for variant in ("delivered", "sent", "failed", "read"):
        assert (
            post(
                client,
                retarget(fixture("message_status", variant), phone_number_id="1122334455667"),
            ).status_code
            == 200
        )

    recipient.refresh_from_db()
    assert recipient.status == Status.READ
    assert recipient.read_at == read_at
    assert recipient.error_code == ""


def test_failed_keeps_metas_error(client, recipient):
    post(client, retarget(fixture("message_status", "failed"), phone_number_id="1122334455667"))

    recipient.refresh_from_db()
    assert recipient.status == Status.FAILED
    assert recipient.error_code == "130472"
    assert recipient.error_title == "User's number is part of an experiment"
    assert "part of an experiment" in recipient.error_detail


def test_a_recipient_lost_mid_call_is_reconciled_by_its_callback_data(client, recipient):
    SendRecipient.objects.filter(pk=recipient.pk).update(status=Status.UNKNOWN, wamid="")
    payload = retarget(
        fixture("message_status", "with_tracker"),
        phone_number_id="1122334455667",
        id="wamid.assigned-by-meta",
        biz_opaque_callback_data=str(recipient.pk),
    )

    post(client, payload)

    recipient.refresh_from_db()
    assert recipient.status == Status.SENT
    assert recipient.wamid == "wamid.assigned-by-meta"


def test_reports_for_another_organizations_number_touch_nothing(client, recipient):
    other = WhatsAppNumberFactory(phone_number_id="999000999")
    payload = retarget(
        fixture("message_status", "read"),
        phone_number_id=other.phone_number_id,
        biz_opaque_callback_data=str(recipient.pk),
    )

    post(client, payload)

    recipient.refresh_from_db()
    assert recipient.status == Status.SENDING


def text_message(body, phone_number_id, sender="972987654321"):
    payload = retarget(fixture("message", "text"), phone_number_id=phone_number_id)
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message["text"]["body"], message["from"] = body, sender
    return payload


@pytest.mark.parametrize("body", ["STOP", " stop! ", "Unsubscribe.", "opt-out", "remove me"])
def test_a_stop_reply_opts_the_phone_out_of_that_organization_only(client, body):
    number = WhatsAppNumberFactory(phone_number_id="1122334455667")
    other_number = WhatsAppNumberFactory()

    post(client, text_message(body, number.phone_number_id))

    opt_out = OptOut.objects.get()
    assert (opt_out.organization, opt_out.phone_e164) == (number.organization, "+972987654321")
    assert (opt_out.scope, opt_out.source) == (OptOut.Scope.ALL, OptOut.Source.KEYWORD)
    assert not OptOut.objects.filter(organization=other_number.organization).exists()


@pytest.mark.parametrize(
    "body", ["please don't stop sending these", "stop sending me this", "Body Text"]
)
def test_ordinary_replies_do_not_opt_out(client, body):
    number = WhatsAppNumberFactory(phone_number_id="1122334455667")
    post(client, text_message(body, number.phone_number_id))
    assert not OptOut.objects.exists()


def preference(value, phone_number_id):
    payload = fixture("user_marketing_preferences", "resume")
    change_value = payload["entry"][0]["changes"][0]["value"]
    change_value["metadata"]["phone_number_id"] = phone_number_id
    change_value["user_preferences"][0]["value"] = value
    return payload


def test_marketing_stop_preference_opts_out_of_marketing_and_resume_lifts_it(client):
    number = WhatsAppNumberFactory(phone_number_id="106540352242922")

    post(client, preference("stop", number.phone_number_id))
    opt_out = OptOut.objects.get()
    assert (opt_out.phone_e164, opt_out.scope) == ("+16505551234", OptOut.Scope.MARKETING)
    assert opt_out.source == OptOut.Source.META_PREFERENCE

    post(client, preference("resume", number.phone_number_id))
    assert not OptOut.objects.exists()


def test_resume_does_not_lift_a_stop_reply(client):
    number = WhatsAppNumberFactory(phone_number_id="106540352242922")
    OptOutFactory(
        organization=number.organization, phone_e164="+16505551234", scope=OptOut.Scope.ALL
    )

    post(client, preference("resume", number.phone_number_id))

    assert OptOut.objects.filter(scope=OptOut.Scope.ALL).count() == 1


def test_a_batched_delivery_applies_every_status(client):
    number = WhatsAppNumberFactory(phone_number_id="1122334455667")
    send = SendFactory(campaign__whatsapp_number=number, campaign__organization=number.organization)
    recipients = [
        SendRecipient.objects.create(
            send=send,
            phone_e164=f"+4420794600{i:02d}",
            status=Status.SENDING,
            wamid=f"wamid.{i}",
            sent_at=timezone.now(),
        )
        for i in range(3)
    ]
    payload = fixture("message_status", "delivered")
    entry = payload["entry"][0]
    entry["changes"][0]["value"]["metadata"]["phone_number_id"] = number.phone_number_id
    template = entry["changes"][0]["value"]["statuses"][0]
    entry["changes"][0]["value"]["statuses"] = [dict(template, id=r.wamid) for r in recipients]
    payload["entry"].append(copy.deepcopy(entry))
    payload["entry"][1]["changes"][0]["value"]["statuses"] = [
        dict(template, id="wamid.0", status="read")
    ]

    post(client, payload)

    statuses = dict(SendRecipient.objects.values_list("wamid", "status"))
    assert statuses == {
        "wamid.0": Status.READ,
        "wamid.1": Status.DELIVERED,
        "wamid.2": Status.DELIVERED,
    }


def failed_status(phone_number_id, wamid, code, recipient_id="972987654321"):
    """A `failed` status webhook as Meta sends it (Cloud API webhook reference, statuses)."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": phone_number_id,
                            },
                            "statuses": [
                                {
                                    "id": wamid,
                                    "status": "failed",
                                    "timestamp": str(int(timezone.now().timestamp())),
                                    "recipient_id": recipient_id,
                                    "errors": [
                                        {
                                            "code": code,
                                            "title": "Message failed",
                                            "message": "Message failed",
                                            "error_data": {"details": "Sandbox detail."},
                                        }
                                    ],
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def test_user_stopped_marketing_in_a_failed_status_opts_the_phone_out_of_marketing(
    client, recipient
):
    """131050 arrives in a status webhook as well as in a send answer: same verdict, same act."""
    organization = recipient.send.campaign.organization
    OptOutFactory(phone_e164="+972987654321", scope=OptOut.Scope.MARKETING)  # another org's

    post(client, failed_status("1122334455667", "wamid.xyzxyz", 131050))
    post(client, failed_status("1122334455667", "wamid.xyzxyz", 131050))  # Meta retries

    recipient.refresh_from_db()
    assert (recipient.status, recipient.error_code) == (Status.FAILED, "131050")
    opt_outs = OptOut.objects.filter(organization=organization)
    assert [(o.phone_e164, o.scope, o.source) for o in opt_outs] == [
        ("+972987654321", OptOut.Scope.MARKETING, OptOut.Source.META_ERROR)
    ]


@pytest.mark.parametrize("code", [131026, 131049, 130472])
def test_other_failures_in_a_status_webhook_opt_nobody_out(client, recipient, code):
    post(client, failed_status("1122334455667", "wamid.xyzxyz", code))

    recipient.refresh_from_db()
    assert recipient.error_code == str(code)
    assert not OptOut.objects.exists()


def us_recipient_of(recipient):
    """The recipient's message went to a US phone of a lead that ingest let through."""
    organization = recipient.send.campaign.organization
    lead = LeadFactory(audience__organization=organization, phone_e164="+12025550143")
    SendRecipient.objects.filter(pk=recipient.pk).update(lead=lead, phone_e164=lead.phone_e164)
    return lead


def test_metas_us_marketing_block_in_a_failed_status_marks_the_lead_ineligible(client, recipient):
    """131049 to a US phone arrives in a status webhook as well as in a send answer: the
    same verdict, acted on the same way (no later MARKETING send tries the lead)."""
    lead = us_recipient_of(recipient)

    post(client, failed_status("1122334455667", "wamid.xyzxyz", 131049, "12025550143"))

    recipient.refresh_from_db()
    assert (recipient.status, recipient.error_code) == (Status.FAILED, "131049")
    lead.refresh_from_db()
    assert lead.ingest_status == Lead.IngestStatus.INELIGIBLE_GEO
    assert not OptOut.objects.exists()


@pytest.mark.parametrize("code", [131026, 131050, 130472])
def test_other_failures_of_a_us_message_leave_its_lead_eligible(client, recipient, code):
    lead = us_recipient_of(recipient)

    post(client, failed_status("1122334455667", "wamid.xyzxyz", code, "12025550143"))

    lead.refresh_from_db()
    assert lead.ingest_status == Lead.IngestStatus.OK


def test_the_marketing_cap_outside_the_us_leaves_the_lead_eligible(client, recipient):
    """131049 to anyone else is Meta's per-user marketing cap: nothing about the country."""
    organization = recipient.send.campaign.organization
    lead = LeadFactory(audience__organization=organization, phone_e164="+972987654321")
    SendRecipient.objects.filter(pk=recipient.pk).update(lead=lead)

    post(client, failed_status("1122334455667", "wamid.xyzxyz", 131049))

    lead.refresh_from_db()
    assert lead.ingest_status == Lead.IngestStatus.OK
