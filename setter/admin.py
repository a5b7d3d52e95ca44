from django.contrib import admin, messages

from . import services
from .models import ApiKey, Membership, Organization, WebhookSigningKey
from .tenancy import OrganizationScopedAdmin


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin):
    list_display = ["name", "slug", "inbound_auth_mode", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def get_inlines(self, request, obj):
        return [MembershipInline] if request.user.is_superuser else []

    def has_add_permission(self, request, *args):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(ApiKey)
class ApiKeyAdmin(OrganizationScopedAdmin):
    list_display = ["name", "prefix", "organization", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["organization"]
    search_fields = ["name", "prefix"]
    fields = ["organization", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        api_key, raw_key = services.create_api_key(obj.organization, obj.name)
        obj.pk = api_key.pk
        obj.prefix, obj.key_hash = api_key.prefix, api_key.key_hash
        self.message_user(
            request,
            f"New API key: {raw_key} — copy it now, it will not be shown again.",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        for api_key in queryset:
            services.revoke_api_key(api_key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")


@admin.register(WebhookSigningKey)
class WebhookSigningKeyAdmin(OrganizationScopedAdmin):
    list_display = ["name", "organization", "created_at", "revoked_at"]
    list_filter = ["organization"]
    fields = ["organization", "name", "created_at", "revoked_at"]
    readonly_fields = ["created_at", "revoked_at"]
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        signing_key = services.create_signing_key(obj.organization, obj.name)
        obj.pk, obj.secret = signing_key.pk, signing_key.secret
        self.message_user(
            request,
            f"New signing secret: {signing_key.secret} — store it in the partner's system.",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected signing keys")
    def revoke(self, request, queryset):
        for signing_key in queryset:
            services.revoke_signing_key(signing_key)
        self.message_user(request, f"Revoked {queryset.count()} signing key(s).")
