from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse

from setter.tenancy import OrganizationScopedAdmin, scope_queryset

from . import errors, services
from .forms import WhatsAppNumberForm
from .models import MessageTemplate, WhatsAppNumber


@admin.register(WhatsAppNumber)
class WhatsAppNumberAdmin(OrganizationScopedAdmin):
    form = WhatsAppNumberForm
    list_display = [
        "display_phone_number",
        "organization",
        "phone_number_id",
        "waba_id",
        "messaging_limit",
        "throughput_mps",
        "mm_lite_terms_accepted",
    ]
    list_filter = ["messaging_limit", "mm_lite_terms_accepted", "organization"]
    search_fields = ["display_phone_number", "phone_number_id", "waba_id"]
    actions = ["sync_from_meta"]

    @admin.action(description="Sync templates and limits from Meta")
    def sync_from_meta(self, request, queryset):
        for number in queryset:
            report_sync(self, request, number)

    def sync_view(self, request, object_id):
        """The number page's "Sync from Meta" button (POST): back to the page with the report."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        number = self.get_object(request, unquote(object_id))
        if number is None or not self.has_view_permission(request, number):
            raise Http404("No such WhatsApp number.")
        report_sync(self, request, number)
        return redirect(reverse("admin:messaging_whatsappnumber_change", args=[number.pk]))

    def get_urls(self):
        sync = path(
            "<path:object_id>/sync/",
            self.admin_site.admin_view(self.sync_view),
            name="messaging_whatsappnumber_sync",
        )
        return [sync, *super().get_urls()]


def report_sync(model_admin, request, number: WhatsAppNumber) -> None:
    """Sync one number and say what changed, by template, or what Meta answered."""
    try:
        sync = services.sync_from_meta(number)
    except errors.WhatsAppError as error:
        model_admin.message_user(request, f"{number}: Meta answered {error}", messages.ERROR)
        return
    model_admin.message_user(request, sync.summary(), messages.SUCCESS)


@admin.register(MessageTemplate)
class MessageTemplateAdmin(OrganizationScopedAdmin):
    list_display = ["name", "language", "category", "status", "parameter_count", "organization"]
    list_filter = ["category", "status", "language", "organization"]
    search_fields = ["name", "body_text"]
    readonly_fields = ["parameter_count", "updated_at"]

    @admin.display(description="Parameters")
    def parameter_count(self, template):
        return template.parameter_count

    def sync_view(self, request):
        """The template list's "Sync from Meta" button (POST): every number the staff member's
        organizations hold, one report line each."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        numbers = scope_queryset(WhatsAppNumber.objects.order_by("pk"), request.user)
        if not numbers.exists():
            self.message_user(request, "No WhatsApp number to sync from.", messages.WARNING)
        for number in numbers:
            report_sync(self, request, number)
        return redirect(reverse("admin:messaging_messagetemplate_changelist"))

    def get_urls(self):
        sync = path(
            "sync/",
            self.admin_site.admin_view(self.sync_view),
            name="messaging_messagetemplate_sync",
        )
        return [sync, *super().get_urls()]
