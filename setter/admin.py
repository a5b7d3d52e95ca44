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


class _CredentialAdmin(OrganizationScopedAdmin):
    """A credential a service makes and the admin shows once, in the message after saving
    (only its hash or its record stays readable); revoked, never edited into another."""

    actions = ["revoke"]

    def issue(self, credential) -> str:
        """Make the credential through its service; the one-time message showing its secret."""
        raise NotImplementedError

    def revoke_one(self, credential) -> None:
        raise NotImplementedError

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        self.message_user(request, self.issue(obj), messages.WARNING)

    @admin.action(description="Revoke the selected ones")
    def revoke(self, request, queryset):
        for credential in queryset:
            self.revoke_one(credential)
        self.message_user(request, f"Revoked {queryset.count()} {self.opts.verbose_name_plural}.")


@admin.register(ApiKey)
class ApiKeyAdmin(_CredentialAdmin):
    list_display = ["name", "prefix", "organization", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["organization"]
    search_fields = ["name", "prefix"]
    fields = ["organization", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]

    def issue(self, credential) -> str:
        api_key, raw_key = services.create_api_key(credential.organization, credential.name)
        credential.pk = api_key.pk
        credential.prefix, credential.key_hash = api_key.prefix, api_key.key_hash
        return f"New API key: {raw_key} — copy it now, it will not be shown again."

    def revoke_one(self, credential) -> None:
        services.revoke_api_key(credential)


@admin.register(WebhookSigningKey)
class WebhookSigningKeyAdmin(_CredentialAdmin):
    list_display = ["name", "organization", "created_at", "revoked_at"]
    list_filter = ["organization"]
    fields = ["organization", "name", "created_at", "revoked_at"]
    readonly_fields = ["created_at", "revoked_at"]

    def issue(self, credential) -> str:
        signing_key = services.create_signing_key(credential.organization, credential.name)
        credential.pk, credential.secret = signing_key.pk, signing_key.secret
        return f"New signing secret: {signing_key.secret} — store it in the partner's system."

    def revoke_one(self, credential) -> None:
        services.revoke_signing_key(credential)
