"""Admin of outbound webhooks: endpoints (secret shown once, rotation) and the delivery log
with every attempt, plus a re-send action."""

import orjson
from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from setter.tenancy import OrganizationScopedAdmin, OrganizationScopedMixin, ReadOnlyScopedAdmin

from .models import EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from .outbound import services


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=EventType.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None selected: every event, including ones added later.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["organization", "url", "description", "event_types", "is_active"]

    def clean(self):
        cleaned = super().clean()
        assert cleaned is not None  # ModelForm.clean returns cleaned_data
        organization = cleaned.get("organization")
        limit = services.MAX_ENDPOINTS_PER_ORGANIZATION
        if self.instance.pk is None and organization is not None:
            if organization.webhook_endpoints.count() >= limit:
                raise forms.ValidationError(f"An organization has at most {limit} endpoints.")
        return cleaned


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(OrganizationScopedAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "organization", "is_active", "events", "disabled_reason", "created_at"]
    list_filter = ["organization", "is_active"]
    search_fields = ["url", "description"]
    readonly_fields = ["disabled_reason", "created_at"]
    actions = ["rotate_secret"]

    @admin.display(description="events")
    def events(self, endpoint):
        return ", ".join(endpoint.event_types) or "all"

    def save_model(self, request, obj, form, change):
        if change:
            if obj.is_active:
                obj.disabled_reason = ""
            return super().save_model(request, obj, form, change)
        endpoint = services.create_endpoint(
            obj.organization, obj.url, description=obj.description, event_types=obj.event_types
        )
        obj.pk, obj.secret, obj.created_at = endpoint.pk, endpoint.secret, endpoint.created_at
        self.message_user(
            request,
            f"Signing secret of {endpoint.url}: {endpoint.secret} — copy it into the partner's "
            "system now, it will not be shown again.",
            messages.WARNING,
        )

    @admin.action(description="Rotate the signing secret (the old one signs for 24 h more)")
    def rotate_secret(self, request, queryset):
        for endpoint in queryset:
            secret = services.rotate_secret(endpoint)
            self.message_user(
                request,
                f"New signing secret of {endpoint.url}: {secret} — it will not be shown again.",
                messages.WARNING,
            )


class WebhookAttemptInline(OrganizationScopedMixin, admin.TabularInline):
    model = WebhookAttempt
    organization_path = WebhookAttempt.organization_path
    fields = ["attempted_at", "status_code", "duration_ms", "error", "response_body"]
    # Flat field names, so valid readonly fields too; the stub types `fields` as nested groups.
    readonly_fields = fields  # type: ignore[assignment]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyScopedAdmin):
    organization_path = WebhookDelivery.organization_path
    list_display = [
        "event_type",
        "event_id",
        "endpoint",
        "status",
        "attempt_count",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", "event_type"]
    search_fields = ["event_id", "endpoint__url"]
    list_select_related = ["endpoint"]
    fields = [
        "endpoint",
        "event_id",
        "event_type",
        "status",
        "attempt_count",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "created_at",
        "finished_at",
        "payload_json",
    ]
    # Flat field names, so valid readonly fields too; the stub types `fields` as nested groups.
    readonly_fields = fields  # type: ignore[assignment]
    inlines = [WebhookAttemptInline]
    actions = ["resend"]

    @admin.display(description="payload")
    def payload_json(self, delivery):
        text = orjson.dumps(delivery.payload, option=orjson.OPT_INDENT_2).decode()
        return format_html("<pre>{}</pre>", text)

    @admin.action(description="Re-send (same event id, retry schedule from the start)")
    def resend(self, request, queryset):
        queued = sum(services.resend(delivery) for delivery in queryset)
        busy = queryset.count() - queued
        self.message_user(request, f"Queued {queued} deliveries again.")
        if busy:
            self.message_user(
                request, f"{busy} being delivered right now were left alone.", messages.WARNING
            )
