from django.contrib import admin, messages

from setter.tenancy import OrganizationScopedAdmin

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
            try:
                changed = services.sync_number(number)
                counts = services.sync_templates(number)
            except errors.WhatsAppError as error:
                self.message_user(request, f"{number}: Meta answered {error}", messages.ERROR)
                continue
            summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()) if n)
            self.message_user(
                request,
                f"{number}: number {', '.join(changed) or 'unchanged'}; "
                f"templates {summary or 'unchanged'}.",
            )


@admin.register(MessageTemplate)
class MessageTemplateAdmin(OrganizationScopedAdmin):
    list_display = ["name", "language", "category", "status", "parameter_count", "organization"]
    list_filter = ["category", "status", "language", "organization"]
    search_fields = ["name", "body_text"]
    readonly_fields = ["parameter_count", "updated_at"]

    @admin.display(description="Parameters")
    def parameter_count(self, template):
        return template.parameter_count
