"""Test phones and test sends in the admin: the organization's short list of staff phones, and
the page that sends one message of a send to one of them now (campaigns.testsends decides)."""

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse

from audiences.models import Lead
from setter.ids import pk_from_text
from setter.tenancy import OrganizationScopedAdmin, ReadOnlyScopedAdmin, scope_queryset

from . import testsends
from .models import Send, TestPhone, TestSend


class TestPhoneForm(forms.ModelForm):
    class Meta:
        model = TestPhone
        fields = ["organization", "phone_e164", "label"]

    def clean_phone_e164(self):
        try:
            return testsends.test_phone_number(self.cleaned_data["phone_e164"])
        except testsends.TestSendRefused as refused:
            raise ValidationError(refused.messages[0].removeprefix("phone: ")) from refused

    def clean(self):
        cleaned = super().clean()
        assert cleaned is not None  # ModelForm.clean returns cleaned_data
        organization = cleaned.get("organization")
        others = TestPhone.objects.filter(organization=organization).exclude(pk=self.instance.pk)
        if organization is not None and others.count() >= TestPhone.MAX_PER_ORGANIZATION:
            raise ValidationError(
                f"An organization keeps at most {TestPhone.MAX_PER_ORGANIZATION} test phones: "
                "remove one first."
            )
        return cleaned


@admin.register(TestPhone)
class TestPhoneAdmin(OrganizationScopedAdmin):
    form = TestPhoneForm
    list_display = ["phone_e164", "label", "organization", "created_at"]
    search_fields = ["phone_e164", "label"]


class TestSendForm(forms.Form):
    phone = forms.ModelChoiceField(
        queryset=TestPhone.objects.none(),
        label="Test phone",
        empty_label=None,
        help_text="Staff phones are kept under Test phones (at most 10 per organization).",
    )
    lead_id = forms.CharField(
        label="Lead id",
        required=False,
        help_text="Render the message as this lead would get it (default: the first lead the "
        "send would reach now).",
    )

    def __init__(self, *args, organization_id: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization_id = organization_id
        field = self.fields["phone"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = TestPhone.objects.filter(organization_id=organization_id)

    def clean_lead_id(self) -> Lead | None:
        text = self.cleaned_data["lead_id"].strip()
        if not text:
            return None
        lead = Lead.objects.filter(  # type: ignore[misc]  # pk=None matches no row: not found
            organization_id=self.organization_id, pk=pk_from_text(text)
        ).first()
        if lead is None:
            raise ValidationError(f"No lead {text!r} in this organization.")
        return lead


@admin.register(TestSend)
class TestSendAdmin(ReadOnlyScopedAdmin):
    """Every test send with its outcome; a send's test page makes new ones."""

    list_display = ["created_at", "send", "phone_e164", "status", "error_code", "requested_by"]
    list_filter = ["status"]
    search_fields = ["phone_e164", "wamid"]

    def get_urls(self):
        return [
            path(
                "send/<path:send_id>/",
                self.admin_site.admin_view(self.test_send_view),
                name="campaigns_testsend_send",
            ),
            path(
                "<path:object_id>/state/",
                self.admin_site.admin_view(self.state_view),
                name="campaigns_testsend_state",
            ),
            *super().get_urls(),
        ]

    def _send_or_404(self, request, send_id) -> Send:
        sends = scope_queryset(
            Send.objects.select_related("campaign__organization", "template"),
            request.user,
            "campaign__organization",
        )
        send = sends.filter(pk=pk_from_text(unquote(send_id))).first()
        if send is None:
            raise Http404("No such send.")
        return send

    def test_send_view(self, request, send_id):
        """GET: the form; POST: send now, and show the result, which the page keeps current."""
        send = self._send_or_404(request, send_id)
        organization_id = send.campaign.organization_id
        form = TestSendForm(request.POST or None, organization_id=organization_id)
        result, refusal = None, ""
        if request.method == "POST" and form.is_valid():
            try:
                result = testsends.send_test(
                    send,
                    phone=form.cleaned_data["phone"].phone_e164,
                    lead=form.cleaned_data["lead_id"],
                    requested_by=request.user.get_username(),
                )
            except ValidationError as refused:
                refusal = " ".join(refused.messages)
        context = {
            **self.admin_site.each_context(request),
            "opts": Send._meta,
            "send": send,
            "campaign": send.campaign,
            "title": f"Test send of {send}",
            "form": form,
            "has_test_phones": TestPhone.objects.filter(organization_id=organization_id).exists(),
            "test_phones_url": reverse("admin:campaigns_testphone_changelist"),
            "result": result,
            "result_json": testsends.test_send_json(result) if result else None,
            "refusal": refusal,
            "recent": TestSend.objects.filter(send=send)[:10],
        }
        return TemplateResponse(request, "admin/campaigns/testsend/send.html", context)

    def state_view(self, request, object_id):
        """The test send's current state, which its status webhooks move (the page polls)."""
        test_send = self.get_object(request, unquote(object_id))
        if test_send is None:
            raise Http404("No such test send.")
        return JsonResponse(testsends.test_send_json(test_send))
