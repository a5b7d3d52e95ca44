from pathlib import Path

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.http import FileResponse, Http404, JsonResponse, StreamingHttpResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import slugify

from setter.ids import pk_from_text
from setter.tenancy import OrganizationScopedAdmin, ReadOnlyScopedAdmin, scope_queryset

from . import segments, selectors, services
from .forms import AudienceUploadForm, OptOutForm
from .models import Audience, Lead, LeadEvent, OptOut

UPLOAD_FIELDS = ["organization", "name", "file", "phone_column", "default_region"]
EDITABLE_FIELDS = ["name", "description"]
DETAIL_FIELDS = [
    "organization",
    "source",
    "status",
    "error",
    "uploaded_file",
    "phone_column",
    "default_region",
    "total_rows",
    "created_at",
    "ingest_started_at",
    "ingest_finished_at",
]


@admin.register(Audience)
class AudienceAdmin(OrganizationScopedAdmin):
    list_display = ["name", "organization", "status", "total_rows", "count_ok", "created_at"]
    list_filter = ["status", "source"]
    search_fields = ["name"]
    change_form_template = "admin/audiences/audience/change_form.html"

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = AudienceUploadForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        return UPLOAD_FIELDS if obj is None else EDITABLE_FIELDS + DETAIL_FIELDS

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else DETAIL_FIELDS

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        data = form.cleaned_data
        audience = services.create_csv_audience(
            organization=data["organization"],
            name=data["name"],
            file=data["file"],
            default_region=data["default_region"],
            phone_column=data["phone_column"],
        )
        obj.pk = audience.pk
        obj.refresh_from_db()

    def get_deleted_objects(self, objs, request):
        """Counts instead of Django's list of every lead, which a million-row audience would
        not survive; an audience in use by a live campaign is protected."""
        objs = list(objs)
        owned = Lead.objects.filter(audience__in=objs).count()
        model_count = {
            Audience._meta.verbose_name_plural: len(objs),
            Lead._meta.verbose_name_plural: owned,
        }
        deleted = [f"{audience} ({audience.size:,} targets)" for audience in objs]
        protected = [
            f"{audience}: used by {'; '.join(using)}"
            for audience in objs
            if (using := segments.readers_using(audience))
        ]
        perms_needed = set() if self.has_delete_permission(request) else {"audience"}
        return deleted, model_count, perms_needed, protected

    def delete_model(self, request, obj):
        segments.delete_segment(obj)

    def delete_queryset(self, request, queryset):
        for audience in queryset:
            segments.delete_segment(audience)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/ingest-status/",
                view(self.ingest_status_view),
                name="audiences_audience_ingest_status",
            ),
            path(
                "<path:object_id>/file/",
                view(self.file_view),
                name="audiences_audience_file",
            ),
            path(
                "<path:object_id>/rejects.csv",
                view(self.rejects_view),
                name="audiences_audience_rejects",
            ),
            *super().get_urls(),
        ]

    def _audience_or_404(self, request, object_id) -> Audience:
        audience = self.get_object(request, unquote(object_id))
        if audience is None or not self.has_view_permission(request, audience):
            raise Http404("No such audience.")
        return audience

    def ingest_status_view(self, request, object_id):
        return JsonResponse(selectors.audience_state(self._audience_or_404(request, object_id)))

    @admin.display(description="File")
    def uploaded_file(self, audience: Audience):
        """A link to `file_view`, never to MEDIA_URL: uploads are not public media."""
        if not audience.file:
            return "—"
        return format_html(
            '<a href="{}" id="audience-file">{}</a>',
            reverse("admin:audiences_audience_file", args=[audience.pk]),
            Path(audience.file.name).name,
        )

    def file_view(self, request, object_id):
        """The uploaded CSV, to staff who may view this audience (its organization's)."""
        audience = self._audience_or_404(request, object_id)
        if not audience.file:
            raise Http404("This audience has no uploaded file.")
        try:
            handle = audience.file.open("rb")
        except FileNotFoundError as error:
            raise Http404("The uploaded file is no longer on disk.") from error
        return FileResponse(
            handle,
            as_attachment=True,
            filename=Path(audience.file.name).name,
            content_type="text/csv; charset=utf-8",
        )

    def rejects_view(self, request, object_id):
        audience = self._audience_or_404(request, object_id)
        response = StreamingHttpResponse(
            selectors.rejected_leads_csv(audience), content_type="text/csv; charset=utf-8"
        )
        filename = f"{slugify(audience.name) or 'audience'}-{audience.pk}-rejects.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        audience = self.get_object(request, unquote(object_id))
        if audience is not None:
            extra_context = {
                **(extra_context or {}),
                "ingest": selectors.audience_state(audience),
                "ingest_status_url": reverse(
                    "admin:audiences_audience_ingest_status", args=[audience.pk]
                ),
                "rejects_url": reverse("admin:audiences_audience_rejects", args=[audience.pk]),
            }
        return super().change_view(request, object_id, form_url, extra_context)


class AudienceListFilter(admin.SimpleListFilter):
    """Audiences of the staff member's organizations only (the default lists every one)."""

    title = "audience"
    parameter_name = "audience"

    def lookups(self, request, model_admin):
        audiences = scope_queryset(Audience.objects.all(), request.user)
        return [(str(pk), name) for pk, name in audiences.values_list("pk", "name")]

    def queryset(self, request, queryset):
        if (audience_id := pk_from_text(self.value())) is not None:
            return queryset.filter(audience_id=audience_id)
        return queryset


@admin.register(Lead)
class LeadAdmin(ReadOnlyScopedAdmin):
    # Fits a 1,400 px window beside the admin's menu and filters (the template cuts long
    # values with an ellipsis); the phone as written shows where it could not be normalised.
    list_display = [
        "row_number",
        "phone",
        "external_id",
        "name",
        "email",
        "ingest_status",
        "limited",
        "audience",
    ]
    list_filter = [AudienceListFilter, "ingest_status", "limited_reporting"]
    search_fields = ["phone_e164", "phone_raw", "external_id", "email", "first_name", "last_name"]
    list_select_related = ["audience"]
    show_full_result_count = False

    @admin.display(description="Phone", ordering="phone_e164")
    def phone(self, lead):
        return lead.phone_e164 or lead.phone_raw

    @admin.display(description="Name", ordering="first_name")
    def name(self, lead):
        return " ".join(part for part in (lead.first_name, lead.last_name) if part) or "—"

    @admin.display(description="Limited", boolean=True, ordering="limited_reporting")
    def limited(self, lead):
        """Limited reporting (EEA/UK/JP/KR: Meta sends no read receipts)."""
        return lead.limited_reporting


@admin.register(OptOut)
class OptOutAdmin(OrganizationScopedAdmin):
    form = OptOutForm
    list_display = ["phone_e164", "scope", "source", "organization", "note", "created_at"]
    list_filter = ["scope", "source"]
    search_fields = ["phone_e164"]
    readonly_fields = ["source", "created_at"]


@admin.register(LeadEvent)
class LeadEventAdmin(ReadOnlyScopedAdmin):
    list_display = ["phone_e164", "event_type", "occurred_at", "received_at", "organization"]
    list_filter = ["event_type"]
    search_fields = ["phone_e164", "event_type"]
    date_hierarchy = "occurred_at"
