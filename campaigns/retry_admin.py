"""Retries in the admin: the send's "Retry failed…" page (campaigns.retries decides) and the
list of every retry wave with what it came to."""

import datetime as dt
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from messaging.errors import RetryClass
from setter.ids import pk_from_text
from setter.tenancy import ReadOnlyScopedAdmin, scope_queryset

from . import retries
from .models import Send, SendWave

# The marketer picks the time a few minutes ahead by default: time to reconsider.
DEFAULT_DELAY = dt.timedelta(minutes=5)


class RetryForm(forms.Form):
    at = forms.DateTimeField(
        label="Retry at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        help_text="In the send's time zone. The send's rate and filters apply again then: "
        "phones that opted out since, or left the audience, are not messaged.",
    )
    include = forms.MultipleChoiceField(
        label="Also retry",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Failures of the phone itself are not retried unless you tick their class.",
    )

    def __init__(self, *args, send: Send, classes: list[retries.FailureClassCount], **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = ZoneInfo(send.time_zone)
        field = self.fields["include"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [
            (c.retry_class, f"{c.label} — {c.count:,} recipient(s). {c.warning}")
            for c in classes
            if not c.retried_by_default
        ]
        if not self.is_bound:
            self.initial["at"] = (timezone.now() + DEFAULT_DELAY).astimezone(self.zone)

    def clean_at(self) -> dt.datetime:
        """The datetime-local value is a wall-clock time of the send's zone."""
        at = self.cleaned_data["at"]
        wall_clock = timezone.make_naive(at) if timezone.is_aware(at) else at
        return wall_clock.replace(tzinfo=self.zone)


@admin.register(SendWave)
class SendWaveAdmin(ReadOnlyScopedAdmin):
    """Every retry wave: when, what it included, and how many it queued again."""

    organization_path = "send__campaign__organization"
    list_display = [
        "__str__",
        "send",
        "scheduled_for",
        "status",
        "chosen",
        "requeued",
        "requested_by",
    ]
    list_filter = ["status"]
    list_select_related = ["send__campaign"]

    def get_urls(self):
        return [
            path(
                "send/<path:send_id>/",
                self.admin_site.admin_view(self.retry_view),
                name="campaigns_sendwave_retry",
            ),
            *super().get_urls(),
        ]

    def retry_view(self, request, send_id):
        """GET: the failures by class and the form; POST: schedule the retry. Members of the
        send's organization may (the tenancy scope is the permission, as for every action)."""
        sends = scope_queryset(
            Send.objects.select_related("campaign"), request.user, "campaign__organization"
        )
        send = sends.filter(pk=pk_from_text(unquote(send_id))).first()
        if send is None:
            raise Http404("No such send.")
        classes = retries.failure_classes(send)
        form = RetryForm(request.POST or None, send=send, classes=classes)
        refusal = ""
        if request.method == "POST" and form.is_valid():
            try:
                wave = retries.retry_failed(
                    send,
                    at=form.cleaned_data["at"],
                    include=form.cleaned_data["include"],
                    requested_by=request.user.get_username(),
                )
            except retries.RetryRefused as refused:
                refusal = " ".join(refused.messages)
            else:
                messages.success(
                    request,
                    f"{wave} is scheduled for "
                    f"{wave.scheduled_for.astimezone(form.zone):%Y-%m-%d %H:%M} "
                    f"({send.time_zone}).",
                )
                return redirect(reverse("admin:campaigns_campaign_change", args=[send.campaign_id]))
        context = {
            **self.admin_site.each_context(request),
            "opts": Send._meta,
            "send": send,
            "campaign": send.campaign,
            "title": f"Retry the failed recipients of {send}",
            "classes": classes,
            "form": form,
            "refusal": refusal,
            "waves": send.waves.all(),
            "default_classes": [RetryClass.LABELS[c] for c in RetryClass.RETRIED_BY_DEFAULT],
        }
        return TemplateResponse(request, "admin/campaigns/sendwave/retry.html", context)


def retry_link(send: Send) -> str:
    """The send editor's and analytics' way to the retry page, once the send completed."""
    if send.status != Send.Status.COMPLETED:
        return "Once the send completed, its failed recipients can be retried."
    url = reverse("admin:campaigns_sendwave_retry", args=[send.pk])
    return format_html('<a href="{}" class="send-retry-link">Retry failed…</a>', url)
