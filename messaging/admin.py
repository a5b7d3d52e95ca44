from django.contrib import admin

from setter.tenancy import OrganizationScopedAdmin

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


@admin.register(MessageTemplate)
class MessageTemplateAdmin(OrganizationScopedAdmin):
    list_display = ["name", "language", "category", "status", "parameter_count", "organization"]
    list_filter = ["category", "status", "language", "organization"]
    search_fields = ["name", "body_text"]
    readonly_fields = ["parameter_count", "updated_at"]

    @admin.display(description="Parameters")
    def parameter_count(self, template):
        return template.parameter_count
