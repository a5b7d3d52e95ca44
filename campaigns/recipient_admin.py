"""A send's recipients in the admin: the per-recipient drill-down of the analytics (contact,
message as sent, timeline, failure in plain words), its filters and its CSV export, within the
staff member's organizations (campaigns.recipient_list says how one recipient reads)."""

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import Max
from django.http import Http404, HttpResponseBadRequest, StreamingHttpResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from setter.ids import pk_from_text
from setter.tenancy import ReadOnlyScopedAdmin, scope_queryset

from . import recipient_list
from .models import Campaign, Send, SendRecipient

# Changelist parameters of SendRecipientAdmin naming another object: the CSV export answers 404
# for one outside the staff member's organizations, as the object's own pages do.
SEND_FILTER = "send__id__exact"
SCOPED_FILTERS: dict[str, tuple[type[Send] | type[Campaign], str]] = {
    SEND_FILTER: (Send, "campaign__organization"),
    "send__campaign__id__exact": (Campaign, "organization"),
}


class ErrorCodeFilter(admin.SimpleListFilter):
    """Meta error codes of the staff member's failed recipients (of the chosen send when the
    list is narrowed to one, which keeps the lookup on the send's index), with their titles."""

    title = "error code"
    parameter_name = "error_code"

    def lookups(self, request, model_admin):
        failed = model_admin.get_queryset(request).filter(status=SendRecipient.Status.FAILED)
        send_id = request.GET.get(SEND_FILTER, "")
        if (send_pk := pk_from_text(send_id)) is not None:
            failed = failed.filter(send_id=send_pk)
        return [
            (code, f"{code} {title}".strip())
            for code, title in failed.order_by()
            .values_list("error_code")
            .annotate(title=Max("error_title"))
            .order_by("error_code")
        ]

    def queryset(self, request, queryset):
        return queryset.filter(error_code=self.value()) if self.value() else queryset


@admin.register(SendRecipient)
class SendRecipientAdmin(ReadOnlyScopedAdmin):
    """The per-recipient drill-down of a send's analytics, and its CSV export."""

    organization_path = "send__campaign__organization"
    # The export's columns too (recipient_list.recipients_csv), from the same selectors.
    list_display = [
        "phone_e164",
        "contact",
        "send",
        "status",
        "status_timeline",
        "message",
        "error_code",
        "failure",
        "attempts",
    ]
    list_filter = ["status", ErrorCodeFilter, "wave", "limited_reporting", "send__campaign", "send"]
    # One query per page: the send brings its body snapshot, the lead its name.
    list_select_related = ["send__campaign", "lead"]
    search_fields = ["phone_e164", "wamid"]
    show_full_result_count = False

    @admin.display(description="Contact")
    def contact(self, recipient: SendRecipient) -> str:
        lead = recipient.lead
        return recipient_list.contact_name(lead.first_name, lead.last_name) if lead else ""

    @admin.display(description="Message as sent")
    def message(self, recipient: SendRecipient) -> str:
        send = recipient.send
        text = recipient_list.recipient_message(
            send.template_body, recipient.parameters, send.template_components
        )
        return format_html('<div class="recipient-message">{}</div>', text) if text else "—"

    @admin.display(description="Timeline (UTC)")
    def status_timeline(self, recipient: SendRecipient) -> str:
        steps = recipient_list.timeline(recipient)
        first_day = steps[0][1].date() if steps else None
        return format_html_join(
            " → ",
            '<span class="recipient-step" data-step="{}">{} <time datetime="{}">{}</time></span>',
            (
                (
                    step,
                    step,
                    at.isoformat(),
                    f"{at:%H:%M:%S}" if at.date() == first_day and i else f"{at:%Y-%m-%d %H:%M:%S}",
                )
                for i, (step, at) in enumerate(steps)
            ),
        )

    @admin.display(description="Failure reason", ordering="error_code")
    def failure(self, recipient: SendRecipient) -> str:
        return recipient_list.failure_reason(recipient.error_code, recipient.error_title)

    def get_urls(self):
        export = path(
            "export.csv",
            self.admin_site.admin_view(self.export_view),
            name="campaigns_sendrecipient_export",
        )
        return [export, *super().get_urls()]

    def export_view(self, request):
        """The changelist's rows as CSV: same filters, search and organization scope."""
        if not self.has_view_permission(request):
            raise Http404("No such list.")
        for param, (model, organization_path) in SCOPED_FILTERS.items():
            pk = request.GET.get(param)
            visible = scope_queryset(model.objects.all(), request.user, organization_path)
            if pk is not None and not visible.filter(pk=pk_from_text(pk)).exists():
                raise Http404(f"No such {model._meta.verbose_name}.")
        try:
            recipients = self.get_changelist_instance(request).get_queryset(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("Unknown filter.")
        response = StreamingHttpResponse(
            recipient_list.recipients_csv(recipients), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="recipients.csv"'
        return response

    def changelist_view(self, request, extra_context=None):
        export_url = reverse("admin:campaigns_sendrecipient_export")
        query = request.GET.urlencode()
        extra_context = {
            **(extra_context or {}),
            "export_url": f"{export_url}?{query}" if query else export_url,
        }
        return super().changelist_view(request, extra_context)
