"""Test sends: one message of a send, rendered exactly as a lead would get it, sent now to a
staff member's own phone through the same client, category endpoint and template gates as the
send itself, so a template or number problem shows up here rather than when the send fires.

A test send is never a recipient: it is its own row, counted in no analytics, invisible to
the send's queue, and its status webhooks (recognised by their callback data) move only it.
"""

import datetime as dt
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from audiences.models import Lead
from messaging import errors
from messaging.client import TemplateMessage, WhatsAppClient
from setter.models import Organization
from setter.phones import normalize_phone

from . import services
from .eligibility import Eligible

# A test send moves as a recipient does on Meta's reports: the recipients' own table.
from .models import Send, TestPhone, TestSend
from .recipients import IMPLIED_TIMES, RECIPIENT_TRANSITIONS, REPORTED_STATUS_TRANSITIONS
from .rendering import MissingParameter, api_parameters, render_body, send_renderer

logger = logging.getLogger(__name__)
Status = TestSend.Status

# biz_opaque_callback_data of a test send: Meta echoes it in every status of the message.
CALLBACK_PREFIX = "test:"


class TestSendRefused(ValidationError):
    """The test send cannot be made as asked; nothing was sent. `field` names the input."""

    __test__ = False  # not a pytest test class

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class TestSendThrottled(TestSendRefused):
    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        super().__init__(
            "",
            f"Your organization made {settings.TEST_SENDS_PER_HOUR} test sends in the last "
            f"hour: try again in {max(1, retry_after // 60)} minute(s).",
        )


def add_test_phone(organization: Organization, raw_phone: str, label: str = "") -> TestPhone:
    """A valid phone, in international format, while the organization has room for it."""
    phone = test_phone_number(raw_phone)
    if TestPhone.objects.filter(organization=organization, phone_e164=phone).exists():
        raise TestSendRefused("phone", f"{phone} is already a test phone")
    if (
        TestPhone.objects.filter(organization=organization).count()
        >= TestPhone.MAX_PER_ORGANIZATION
    ):
        raise TestSendRefused(
            "phone", f"an organization keeps at most {TestPhone.MAX_PER_ORGANIZATION} test phones"
        )
    return TestPhone.objects.create(organization=organization, phone_e164=phone, label=label)


def test_phone_number(raw_phone: str) -> str:
    """The E.164 form of a test phone written with its country code, or TestSendRefused."""
    text = (raw_phone or "").strip()
    if not text.startswith(("+", "00")):
        raise TestSendRefused("phone", "write the phone with its country code, e.g. +447911123456")
    normalized = normalize_phone(text)
    if not normalized.is_valid:
        raise TestSendRefused("phone", normalized.error)
    return normalized.e164


def send_test(
    send: Send,
    *,
    phone: str,
    lead: Lead | None = None,
    requested_by: str = "",
    client: WhatsAppClient | None = None,
    now: dt.datetime | None = None,
) -> TestSend:
    """Render the send for `lead` (default: the first lead it would reach now) and send it
    to one of the organization's test phones. Meta's refusal is the test's result (a failed
    test send with Meta's code and title), not an exception; every refusal of ours is."""
    campaign = send.campaign
    organization = campaign.organization
    to = test_phone_number(phone)
    if not TestPhone.objects.filter(organization=organization, phone_e164=to).exists():
        raise TestSendRefused(
            "phone",
            f"{to} is not one of your organization's test phones (add it under Test phones)",
        )
    problems = services.send_problems(send)
    if problems:
        raise TestSendRefused("", "; ".join(problems))
    if lead is None:
        lead = _first_eligible_lead(send)
    elif lead.organization_id != organization.pk:
        raise TestSendRefused("lead", f"no lead {lead.pk} in your organization")
    try:
        parameters = send_renderer(send)(lead)
    except MissingParameter as missing:
        raise TestSendRefused("lead", f"{missing}: the send would skip this lead") from missing
    test_send = _record(send, lead, to, parameters, requested_by, now or timezone.now())
    message = TemplateMessage(
        number=campaign.whatsapp_number,
        to=to,
        template_name=send.template.name,
        language=send.template.language,
        parameters=parameters,
        category=send.category,
        callback_data=f"{CALLBACK_PREFIX}{test_send.pk}",
        product_policy=campaign.product_policy,
        slots=send.template.parameter_slots,
    )
    owned_client = client is None
    client = client or WhatsAppClient()
    try:
        result = client.send_template(message)
    except errors.WhatsAppError as error:
        _failed(test_send, error)
    else:
        TestSend.objects.filter(pk=test_send.pk, status=Status.SENDING).update(
            status=Status.SENT, wamid=result.wamid, sent_at=timezone.now()
        )
    finally:
        if owned_client:
            client.close()
    test_send.refresh_from_db()
    return test_send


def _first_eligible_lead(send: Send) -> Lead:
    """The lowest lead id the send would reach if it fired at its time, as the dry run's."""
    eligible = Eligible.of_send(send)
    lead_ids = eligible.first_lead_ids(1)
    if not lead_ids:
        reason = f" ({eligible.reason})" if eligible.reason else ""
        raise TestSendRefused("lead", f"the send would reach nobody{reason}: pick a lead")
    return Lead.objects.get(pk=lead_ids[0])


def _record(send, lead, to, parameters, requested_by, now) -> TestSend:
    """The test send's row, once the organization's hourly allowance has room for it (the
    organization row is locked so two staff members cannot both take the last one)."""
    with transaction.atomic():
        Organization.objects.select_for_update().filter(pk=send.campaign.organization_id).first()
        hour_ago = now - dt.timedelta(hours=1)
        recent = TestSend.objects.filter(
            organization_id=send.campaign.organization_id, created_at__gt=hour_ago
        ).order_by("created_at")
        if recent.count() >= settings.TEST_SENDS_PER_HOUR:
            oldest = recent.values_list("created_at", flat=True).first()
            raise TestSendThrottled(int((oldest - hour_ago).total_seconds()) + 1)
        return TestSend.objects.create(
            organization_id=send.campaign.organization_id,
            send=send,
            lead=lead,
            phone_e164=to,
            parameters=parameters,
            body=render_body(send.template.body_text, parameters),
            requested_by=requested_by[:150],
        )


def _failed(test_send: TestSend, error: errors.WhatsAppError) -> None:
    if isinstance(error, errors.SendLevelError):
        title = error.marketer_message
    else:
        reason = errors.plain_words(error.code)
        if reason:
            title = f"{reason} (Meta error {error.code}: {error.title})"
        else:
            title = f"{error.title} (Meta error {error.code})" if error.code else str(error)
    TestSend.objects.filter(pk=test_send.pk).update(
        status=Status.FAILED,
        error_code=str(error.code or ""),
        error_title=title[:255],
        error_detail=error.details,
        failed_at=timezone.now(),
    )


def ingest_test_statuses(updates: list) -> tuple[int, list]:
    """Status reports of test sends (by their callback data) move them forward. Returns how
    many test sends moved, and the other reports, which are the recipients' feedback."""
    moved, others = 0, []
    for update in updates:
        if not update.callback_data.startswith(CALLBACK_PREFIX):
            others.append(update)
            continue
        pk = update.callback_data.removeprefix(CALLBACK_PREFIX)
        report = REPORTED_STATUS_TRANSITIONS.get(update.status)
        if not pk.isdigit() or report is None:
            continue
        sources = RECIPIENT_TRANSITIONS[report].sources
        fields = {
            column: Coalesce(F(column), Value(update.timestamp))
            for column in IMPLIED_TIMES[update.status]
        }
        if update.status == Status.FAILED:
            fields |= {
                "error_code": update.error_code,
                "error_title": update.error_title,
                "error_detail": update.error_detail,
            }
        moved += TestSend.objects.filter(
            pk=int(pk),
            status__in=sources,
            send__campaign__whatsapp_number__phone_number_id=update.phone_number_id,
        ).update(status=update.status, **fields)
    return moved, others


def test_send_json(test_send: TestSend) -> dict:
    """The test send as the API answers it and the editor's page polls it."""

    def instant(value):
        return value.isoformat().replace("+00:00", "Z") if value else None

    return {
        "testSendId": test_send.pk,
        "phone": test_send.phone_e164,
        "leadId": str(test_send.lead_id) if test_send.lead_id else None,
        **api_parameters(test_send.parameters, test_send.send.template.parameter_slots),
        "body": test_send.body,
        "status": test_send.status,
        "wamid": test_send.wamid or None,
        "error": (
            {"code": test_send.error_code, "title": test_send.error_title}
            if test_send.status == Status.FAILED
            else None
        ),
        "sentAt": instant(test_send.sent_at),
        "deliveredAt": instant(test_send.delivered_at),
        "readAt": instant(test_send.read_at),
        "failedAt": instant(test_send.failed_at),
    }
