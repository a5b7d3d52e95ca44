"""The campaign editor: a campaign with its sends inline, and the lifecycle actions.

Everything that decides goes through campaigns.services; this module validates input,
calls a service and turns its answer into admin messages.
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from setter.tenancy import OrganizationScopedMixin, ReadOnlyScopedAdmin

from . import materializer, selectors, services
from .forms import CampaignForm, SendForm, SendInlineFormSet
from .models import AudienceFilterEvent, Campaign, Send, SendRecipient

ACTION_LABELS = {
    "schedule": ("Schedule", "scheduled"),
    "pause": ("Pause", "paused"),
    "resume": ("Resume", "resumed"),
    "cancel": ("Cancel", "cancelled"),
}

SYSTEM_FIELDS = ["status", "status_reason", "created_at"]


class SendInline(OrganizationScopedMixin, admin.StackedInline):
    model = Send
    form = SendForm
    formset = SendInlineFormSet
    organization_path = "campaign__organization"
    extra = 0
    ordering = ["position", "pk"]
    readonly_fields = ["scheduled_for_utc", "status", "delivery"]
    fieldsets = [
        (None, {"fields": [("position", "name", "status")]}),
        ("When", {"fields": [("local_date", "local_time", "time_zone"), "scheduled_for_utc"]}),
        ("Message", {"fields": [("category", "template"), "parameter_mapping"]}),
        (
            "Audience",
            {
                "fields": [
                    "audience_filter_mode",
                    ("event_filter_mode", "event_filter_type", "event_filter_within_minutes"),
                ]
            },
        ),
        ("Delivery", {"fields": ["max_messages_per_second", "delivery"]}),
    ]

    @admin.display(description="Progress")
    def delivery(self, send):
        if send.pk is None or send.status == Send.Status.PENDING:
            return send.status_reason or "—"
        stats = selectors.send_progress(send)
        counts = ", ".join(f"{status} {n:,}" for status, n in stats.counts.items() if n)
        times = " · ".join(
            f"{label} {moment:%Y-%m-%d %H:%M:%S} UTC"
            for label, moment in (("started", send.started_at), ("completed", send.completed_at))
            if moment
        )
        parts = [f"{stats.progress:.0%} of {stats.total:,} recipients done", counts, times]
        return " — ".join(p for p in [*parts, send.status_reason] if p)

    @admin.display(description="UTC instant")
    def scheduled_for_utc(self, send):
        return f"{send.scheduled_for:%Y-%m-%d %H:%M} UTC" if send.scheduled_for else "—"

    @staticmethod
    def _editable(campaign):
        """Sends of a campaign that left draft are shown, never added, changed or deleted."""
        return campaign is None or campaign.is_editable

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and self._editable(obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._editable(obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._editable(obj)


def _transition_action(action: str):
    label, _ = ACTION_LABELS[action]

    def run(modeladmin, request, queryset):
        for campaign in queryset:
            modeladmin.run_transition(request, campaign, action)

    run.__name__ = action
    return admin.action(description=f"{label} selected campaigns")(run)


@admin.register(Campaign)
class CampaignAdmin(OrganizationScopedMixin, admin.ModelAdmin):
    form = CampaignForm
    inlines = [SendInline]
    list_display = ["name", "status", "whatsapp_number", "next_send_at", "created_at"]
    list_filter = ["status", "whatsapp_number"]
    list_select_related = ["whatsapp_number"]
    search_fields = ["name"]
    actions = [_transition_action(action) for action in services.ADMIN_ACTIONS]
    fields = [
        *CampaignForm.Meta.fields,
        "status",
        "status_reason",
        "created_at",
    ]
    filter_horizontal = ["audiences"]

    def get_queryset(self, request):
        return selectors.with_next_send_at(super().get_queryset(request))

    @admin.display(description="Next send", ordering="next_send_at")
    def next_send_at(self, campaign):
        if campaign.next_send_at is None:
            return "—"
        return f"{campaign.next_send_at:%Y-%m-%d %H:%M} UTC"

    def get_fields(self, request, obj=None):
        if obj is None:
            return [f for f in self.fields if f not in SYSTEM_FIELDS]
        return self.fields

    def get_readonly_fields(self, request, obj=None):
        """A campaign keeps the organization it was created in; the system writes the rest."""
        return SYSTEM_FIELDS if obj is None else ["organization", *SYSTEM_FIELDS]

    def has_change_permission(self, request, obj=None):
        """A campaign that left draft is viewed, not changed: the lifecycle actions move it."""
        return super().has_change_permission(request, obj) and (obj is None or obj.is_editable)

    def has_delete_permission(self, request, obj=None):
        live = (Campaign.Status.SCHEDULED, Campaign.Status.PAUSED, Campaign.Status.RUNNING)
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or obj.status not in live)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, SendInline):
            kwargs["visible_sends"] = inline.get_queryset(request)
        return kwargs

    def save_model(self, request, obj, form, change):
        services.save_campaign(obj)

    def save_formset(self, request, form, formset, change):
        if formset.model is not Send:
            return super().save_formset(request, form, formset, change)
        sends = formset.save(commit=False)
        for send in formset.deleted_objects:
            services.delete_send(send)
        for send in sends:
            resolved = services.save_send(send)
            if resolved.ambiguous:
                self.message_user(request, f"{send}: {resolved.note}", messages.WARNING)

    # --- Lifecycle actions ------------------------------------------------------------------

    def run_transition(self, request, campaign: Campaign, action: str) -> bool:
        """Apply one lifecycle action and report it: one error message per failed gate."""
        label, done = ACTION_LABELS[action]
        try:
            services.transition_campaign(
                campaign, action, reason=f"{label} by {request.user} in the admin."
            )
        except ValidationError as error:
            for message in error.messages:
                self.message_user(request, f"{campaign}: {message}", messages.ERROR)
            return False
        self.message_user(request, f"{campaign}: {done}.", messages.SUCCESS)
        return True

    def transition_view(self, request, object_id, action):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        campaign = self.get_object(request, unquote(object_id))
        if (
            campaign is None
            or action not in services.ADMIN_ACTIONS
            or not self.has_view_permission(request, campaign)
        ):
            raise Http404("No such campaign or action.")
        self.run_transition(request, campaign, action)
        return redirect(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))

    def dry_run_view(self, request, object_id):
        """Who each send would reach and what they would read; nothing is written or sent."""
        campaign = self.get_object(request, unquote(object_id))
        if campaign is None or not self.has_view_permission(request, campaign):
            raise Http404("No such campaign.")
        sends = campaign.sends.select_related("template").order_by("scheduled_for", "position")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": campaign,
            "title": f"Dry run of {campaign}",
            "previews": [(send, materializer.preview_send(send)) for send in sends],
        }
        return TemplateResponse(request, "admin/campaigns/campaign/dry_run.html", context)

    def get_urls(self):
        transition = path(
            "<path:object_id>/transition/<str:action>/",
            self.admin_site.admin_view(self.transition_view),
            name="campaigns_campaign_transition",
        )
        dry_run = path(
            "<path:object_id>/dry-run/",
            self.admin_site.admin_view(self.dry_run_view),
            name="campaigns_campaign_dry_run",
        )
        return [transition, dry_run, *super().get_urls()]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["transition_actions"] = [
                {"name": action, "label": ACTION_LABELS[action][0]}
                for action in services.available_actions(obj)
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)


@admin.register(SendRecipient)
class SendRecipientAdmin(ReadOnlyScopedAdmin):
    organization_path = "send__campaign__organization"
    list_display = [
        "phone_e164",
        "send",
        "status",
        "attempts",
        "error_code",
        "error_title",
        "sent_at",
        "delivered_at",
        "read_at",
    ]
    list_filter = ["status", "send"]
    list_select_related = ["send__campaign"]
    search_fields = ["phone_e164", "wamid"]


@admin.register(AudienceFilterEvent)
class AudienceFilterEventAdmin(ReadOnlyScopedAdmin):
    list_display = ["send", "mode", "lead_count", "received_at"]
    list_filter = ["mode", "send", "organization"]
    list_select_related = ["send__campaign"]
    date_hierarchy = "received_at"
