"""The campaign editor: a campaign with its sends inline, and the lifecycle actions.

Everything that decides goes through campaigns.services; this module validates input,
calls a service and turns its answer into admin messages.
"""

import datetime as dt
import json

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    Http404,
    HttpResponseNotAllowed,
    JsonResponse,
)
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from audiences.models import Audience
from messaging.models import Category, MessageTemplate, WhatsAppNumber
from setter.ids import pk_from_text
from setter.tenancy import (
    OrganizationScopedMixin,
    ReadOnlyScopedAdmin,
    organizations_of,
    scope_queryset,
)

from . import analytics, duplication, materializer, pacing, selectors, services
from .forms import CampaignForm, SendForm, SendInlineFormSet
from .models import AudienceFilterEvent, Campaign, Send
from .retry_admin import retry_link

ACTION_LABELS = {
    "schedule": ("Schedule", "scheduled"),
    "pause": ("Pause", "paused"),
    "resume": ("Resume", "resumed"),
    "cancel": ("Cancel", "cancelled"),
}

SYSTEM_FIELDS = ["api_identifier", "status", "status_reason", "created_at"]


def delivery_text(send: Send) -> str:
    """A send's "Progress" field; the progress view serves it too, so the field stays live."""
    if send.pk is None or send.status == Send.Status.PENDING:
        return send.status_reason or "—"
    stats = selectors.send_progress(send)
    counts = ", ".join(f"{status} {n:,}" for status, n in stats.counts.items() if n)
    times = " · ".join(
        f"{label} {moment:%Y-%m-%d %H:%M:%S} UTC"
        for label, moment in (
            ("started", send.started_at),
            ("completed", send.completed_at),
            # Its recipient rows are gone (purge_recipients): the figures are the kept ones.
            ("recipients purged", send.recipients_purged_at),
        )
        if moment
    )
    parts = [f"{stats.progress:.0%} of {stats.total:,} recipients done", counts, times]
    parts += [wave.note for wave in analytics.send_waves([send]).get(send.pk, [])]
    if send.status == Send.Status.SENDING:
        rate = pacing.send_rate(send)
        parts.append(f"rate {rate.effective:.0f}/s of {rate.configured}/s {rate.reason}")
    return " — ".join(p for p in [*parts, send.status_reason] if p)


class SendInline(OrganizationScopedMixin, admin.StackedInline):
    model = Send
    form = SendForm
    formset = SendInlineFormSet
    organization_path = "campaign__organization"
    extra = 0
    ordering = ["position", "pk"]
    readonly_fields = ["scheduled_for_utc", "status", "delivery", "test_send", "retry"]
    fieldsets = [
        (None, {"fields": [("position", "name", "status"), ("test_send", "retry")]}),
        (
            "When",
            {
                "fields": [
                    ("local_date", "local_time", "time_zone"),
                    "recipient_local_time",
                    "scheduled_for_utc",
                ]
            },
        ),
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
        return delivery_text(send)

    @admin.display(description="Test")
    def test_send(self, send):
        """A link to send this message now to a staff phone (once the send is saved)."""
        if send.pk is None:
            return "Save the send first to test it."
        url = reverse("admin:campaigns_testsend_send", args=[send.pk])
        return format_html('<a href="{}" class="send-test-link">Send a test now…</a>', url)

    @admin.display(description="Retry")
    def retry(self, send):
        """A link to retry the failed recipients, once the send completed."""
        return retry_link(send) if send.pk else "—"

    @admin.display(description="UTC instant")
    def scheduled_for_utc(self, send):
        if not send.scheduled_for:
            return "—"
        first = (
            " (its first wave, once the campaign is scheduled)" if send.recipient_local_time else ""
        )
        return f"{send.scheduled_for:%Y-%m-%d %H:%M} UTC{first}"

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


class CampaignChangeList(ChangeList):
    """The page's campaigns get their list figures in one query: annotating the changelist's
    queryset would make the paginator's COUNT evaluate them for every campaign."""

    def get_results(self, request):
        super().get_results(request)
        shown = {campaign.pk: campaign for campaign in self.result_list}
        for row in selectors.with_list_stats(Campaign.objects.filter(pk__in=shown)):
            shown[row.pk].list_stats = row.list_stats
            shown[row.pk].next_send_local = row.next_send_local


def _transition_action(action: str):
    label, _ = ACTION_LABELS[action]

    def run(modeladmin, request, queryset):
        for campaign in queryset:
            modeladmin.run_transition(request, campaign, action)

    run.__name__ = action
    return admin.action(description=f"{label} selected campaigns")(run)


def _list_figure(stage: str, description: str):
    """A campaign-list column: how many of the campaign's recipients reached `stage`."""

    @admin.display(description=description)
    def column(self, campaign):
        return f"{getattr(selectors.list_stats_of(campaign), stage):,}"

    return column


@admin.register(Campaign)
class CampaignAdmin(OrganizationScopedMixin, admin.ModelAdmin):
    form = CampaignForm
    inlines = [SendInline]
    list_display = [
        "name",
        "status",
        "whatsapp_number",
        "next_send_at",
        "recipients",
        "sent",
        "delivered",
        "read",
        "failed",
        "read_rate",
        "progress",
        "created_at",
    ]
    list_filter = ["status", "whatsapp_number"]
    list_select_related = ["whatsapp_number"]
    search_fields = ["name", "api_id"]
    actions = [
        *(_transition_action(action) for action in services.ADMIN_ACTIONS),
        "duplicate_selected",
    ]
    fields = [
        *CampaignForm.Meta.fields,
        "api_identifier",
        "status",
        "status_reason",
        "created_at",
    ]
    filter_horizontal = ["audiences"]

    def get_queryset(self, request):
        return selectors.with_next_send_at(super().get_queryset(request))

    def get_changelist(self, request, **kwargs):
        return CampaignChangeList

    @admin.display(description="API id")
    def api_identifier(self, campaign):
        """The id the REST API knows the campaign by, so a marketer and a developer agree."""
        return campaign.api_id

    @admin.display(description="Next send", ordering="next_send_at")
    def next_send_at(self, campaign):
        """The send's own local time and zone, and the same instant in the viewer's zone (the
        browser's, filled in by the list's script; UTC without it)."""
        local = campaign.next_send_local
        if campaign.next_send_at is None or not local:
            return "—"
        utc = campaign.next_send_at.astimezone(dt.UTC)
        return format_html(
            '{} {} {}<br><time class="viewer-time" datetime="{}">{} UTC</time>',
            local["date"],
            str(local["time"])[:5],
            local["zone"],
            utc.isoformat(),
            f"{utc:%Y-%m-%d %H:%M}",
        )

    recipients = _list_figure("recipients", "Recipients")
    sent = _list_figure("sent", "Sent")
    delivered = _list_figure("delivered", "Delivered")
    read = _list_figure("read", "Read")
    failed = _list_figure("failed", "Failed")

    @admin.display(description="Read rate")
    def read_rate(self, campaign):
        """Read over delivered where Meta reports reads (not the EEA, UK, Japan, Korea)."""
        rate = selectors.list_stats_of(campaign).read_rate
        return "—" if rate is None else f"{rate:.0%}"

    @admin.display(description="Progress")
    def progress(self, campaign):
        """A bar while the campaign runs; its share of recipients settled otherwise."""
        stats = selectors.list_stats_of(campaign)
        if not stats.recipients:
            return "—"
        if campaign.status != Campaign.Status.RUNNING:
            return f"{stats.progress:.0%}"
        return format_html(
            '<progress value="{}" max="{}" title="{}"></progress> {}',
            stats.done,
            stats.recipients,
            f"{stats.done:,} of {stats.recipients:,} settled",
            f"{stats.progress:.0%}",
        )

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
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or obj.status not in Campaign.LIVE_STATUSES)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, SendInline):
            kwargs["visible_sends"] = inline.get_queryset(request)
            organizations = organizations_of(request.user)
            if obj.organization_id is None and len(organizations[:2]) == 1:
                # A new campaign's one possible organization, preselected on the page.
                kwargs["organization"] = organizations.get()
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
        if action in ("schedule", "resume"):
            sends = campaign.sends.select_related("campaign__whatsapp_number")
            for warning in pacing.rate_warnings(sends):
                self.message_user(request, warning, messages.WARNING)
        return True

    def run_duplicate(self, request, campaign: Campaign) -> Campaign | None:
        """Copy one campaign as a new draft and say what the copy's schedule became."""
        try:
            duplicate = duplication.duplicate_campaign(campaign)
        except ValidationError as error:
            for message in error.messages:
                self.message_user(request, f"{campaign}: {message}", messages.ERROR)
            return None
        self.message_user(
            request,
            f"{campaign}: duplicated as the draft '{duplicate.campaign}'. "
            f"{duplicate.schedule_note}",
            messages.SUCCESS,
        )
        return duplicate.campaign

    @admin.action(description="Duplicate selected campaigns as drafts", permissions=["add"])
    def duplicate_selected(self, request, queryset):
        for campaign in queryset:
            self.run_duplicate(request, campaign)

    def duplicate_view(self, request, object_id):
        """POST copies the campaign and opens the copy's editor."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        campaign = self._campaign_or_404(request, object_id)
        if not self.has_add_permission(request):
            raise PermissionDenied
        copy = self.run_duplicate(request, campaign)
        target = copy or campaign
        return redirect(reverse("admin:campaigns_campaign_change", args=[target.pk]))

    def _campaign_or_404(self, request, object_id) -> Campaign:
        """The campaign if the staff member's organizations hold it; 404 for any other."""
        campaign = self.get_object(request, unquote(object_id))
        if campaign is None or not self.has_view_permission(request, campaign):
            raise Http404("No such campaign.")
        return campaign

    def transition_view(self, request, object_id, action):
        """POST applies the action; GET of cancel asks first, with what it will skip."""
        if request.method == "GET" and action == "cancel":
            return self.cancel_confirm_view(request, object_id)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        campaign = self._campaign_or_404(request, object_id)
        if action not in services.ADMIN_ACTIONS:
            raise Http404("No such action.")
        self.run_transition(request, campaign, action)
        return redirect(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))

    def cancel_confirm_view(self, request, object_id):
        campaign = self._campaign_or_404(request, object_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": campaign,
            "title": f"Cancel {campaign}?",
            "impact": selectors.cancel_impact(campaign),
            "can_cancel": "cancel" in services.available_actions(campaign),
        }
        return TemplateResponse(request, "admin/campaigns/campaign/cancel_confirm.html", context)

    def dry_run_view(self, request, object_id):
        """Who each send would reach and what they would read; nothing is written or sent."""
        campaign = self._campaign_or_404(request, object_id)
        sends = campaign.sends.select_related("template").order_by("scheduled_for", "position")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": campaign,
            "title": f"Dry run of {campaign}",
            "previews": [(send, materializer.preview_send(send)) for send in sends],
        }
        return TemplateResponse(request, "admin/campaigns/campaign/dry_run.html", context)

    def progress_view(self, request, object_id):
        """The numbers the campaign page's script polls while a send fires, with each send's
        Progress text and the actions the campaign's status allows, so the page stays current."""
        campaign = self._campaign_or_404(request, object_id)
        figures = analytics.campaign_analytics(campaign)
        state = analytics.analytics_json(figures)
        state["campaign"]["actions"] = services.available_actions(campaign)
        for send_state, send_analytics in zip(state["sends"], figures.sends, strict=True):
            send_state["delivery"] = delivery_text(send_analytics.send)
        return JsonResponse(state)

    PREVIEW_PARAMETERS = {"template", "category", "mapping", "audiences", "number"}

    def send_preview_view(self, request):
        """The send editor's live preview (JSON): a template's placeholders, the columns of
        the audiences chosen on the page, and the message for their first eligible lead.
        Everything named must be of the template's organization, one of the staff member's:
        anything else is not found."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        query = request.GET
        unknown = sorted(set(query) - self.PREVIEW_PARAMETERS)
        if unknown:
            return JsonResponse(
                {"error": f"Unknown parameter(s): {', '.join(unknown)}."}, status=400
            )
        category = query.get("category", "")
        if category not in Category.values:
            return JsonResponse(
                {"error": f"category: one of {', '.join(Category.values)}."}, status=400
            )
        try:
            mapping = json.loads(query.get("mapping") or "[]")
        except ValueError:
            return JsonResponse({"error": "mapping: a JSON list of strings."}, status=400)
        template = self._visible(request, MessageTemplate, query.get("template"))
        organization_id = template.organization_id
        number = None
        if query.get("number"):
            number = self._visible(request, WhatsAppNumber, query["number"], organization_id)
        audiences = [
            self._visible(request, Audience, pk, organization_id)
            for pk in query.getlist("audiences")
            if pk
        ]
        campaign = Campaign(organization=template.organization, whatsapp_number=number)
        preview = selectors.send_editor_preview(campaign, audiences, template, mapping, category)
        lead = preview.lead
        return JsonResponse(
            {
                "template": {"name": template.name, "body": template.body_text},
                "placeholders": preview.placeholders,
                "slots": preview.slots,
                "columns": preview.columns,
                "lead": lead and {"phoneE164": lead.phone_e164, "firstName": lead.first_name},
                "parameters": preview.parameters,
                "text": preview.text,
                "componentTexts": preview.component_texts,
                "problems": preview.problems,
            }
        )

    @staticmethod
    def _visible(request, model, pk_text, organization_id=None):
        """The object if one of the staff member's organizations (this one, when given) holds
        it; 404 for any other, as if it did not exist."""
        pk = pk_from_text(pk_text or "")
        objects = scope_queryset(model.objects.all(), request.user, "organization")
        if organization_id is not None:
            objects = objects.filter(organization_id=organization_id)
        found = objects.filter(pk=pk).first() if pk is not None else None
        if found is None:
            raise Http404(f"No such {model._meta.verbose_name}.")
        return found

    def get_urls(self):
        send_preview = path(
            "send-preview/",
            self.admin_site.admin_view(self.send_preview_view),
            name="campaigns_campaign_send_preview",
        )
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
        progress = path(
            "<path:object_id>/progress/",
            self.admin_site.admin_view(self.progress_view),
            name="campaigns_campaign_progress",
        )
        duplicate = path(
            "<path:object_id>/duplicate/",
            self.admin_site.admin_view(self.duplicate_view),
            name="campaigns_campaign_duplicate",
        )
        return [send_preview, transition, dry_run, progress, duplicate, *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """Another organization's campaign is not found, rather than a redirect to the index."""
        self._campaign_or_404(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["send_preview_url"] = reverse("admin:campaigns_campaign_send_preview")
        if obj is not None:
            context["transition_actions"] = [
                {"name": action, "label": ACTION_LABELS[action][0]}
                for action in services.available_actions(obj)
            ]
            figures = analytics.campaign_analytics(obj)
            context["analytics"] = figures
            context["analytics_json"] = analytics.analytics_json(figures)
            context["recipients_url"] = reverse("admin:campaigns_sendrecipient_changelist")
            context["export_url"] = reverse("admin:campaigns_sendrecipient_export")
            context["can_duplicate"] = self.has_add_permission(request)
        return super().render_change_form(request, context, add, change, form_url, obj)


@admin.register(AudienceFilterEvent)
class AudienceFilterEventAdmin(ReadOnlyScopedAdmin):
    list_display = ["send", "mode", "lead_count", "received_at"]
    list_filter = ["mode", "send", "organization"]
    list_select_related = ["send__campaign"]
    date_hierarchy = "received_at"


from . import recipient_admin, testsend_admin  # noqa: E402, F401  (register their admins)
