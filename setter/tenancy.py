"""Organization scoping for the admin: one place decides what a staff member may see."""

from typing import TYPE_CHECKING

from django.contrib import admin
from django.contrib.admin.utils import NotRelationField, get_fields_from_path
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from .models import Organization


def organizations_of(user):
    """Organizations a user works in; every organization for a superuser."""
    if not user.is_authenticated or not user.is_active:
        return Organization.objects.none()
    if user.is_superuser:
        return Organization.objects.all()
    return Organization.objects.filter(memberships__user=user)


def _organization_path(model) -> str | None:
    """The lookup from model to its Organization ("organization", "campaign__organization", …)."""
    path = getattr(model, "organization_path", None)
    if path:
        return path
    if model is Organization:
        return "pk"
    for field in model._meta.get_fields():
        if isinstance(field, models.ForeignKey) and field.related_model is Organization:
            return field.name
    return None


def scope_queryset(queryset, user, path: str | None = None):
    """Rows of the user's organizations (all rows for a superuser; none when the model has
    no known way to its organization). `path` overrides the lookup found on the model."""
    if user.is_superuser:
        return queryset
    path = path or _organization_path(queryset.model)
    if path is None:
        return queryset.none()
    if path == "pk":
        return queryset.filter(pk__in=organizations_of(user))
    return queryset.filter(**{f"{path}__in": organizations_of(user)})


# What the mixin below extends, for the type checker (ModelAdmin and the inlines share it); at
# run time it stays a plain mixin.
if TYPE_CHECKING:
    _AdminBase = admin.ModelAdmin
else:
    _AdminBase = object


def _is_relation(model, lookup) -> bool:
    try:
        return get_fields_from_path(model, lookup)[-1].is_relation
    except (FieldDoesNotExist, NotRelationField):
        return False


class OrganizationScopedMixin(_AdminBase):
    """For ModelAdmin and inlines: rows, foreign-key choices and permissions limited to the
    staff member's organizations. Models reach their organization through a ForeignKey named
    by `organization_path` on the admin (or found automatically when direct)."""

    organization_path: str | None = None

    def _is_member(self, request):
        """Asked for every row and action of a page: the answer is kept on the request."""
        cached = getattr(request, "_setter_is_member", None)
        if cached is None:
            user = request.user
            cached = user.is_active and user.is_staff
            cached = cached and (user.is_superuser or user.memberships.exists())
            request._setter_is_member = cached
        return cached

    def get_queryset(self, request):
        return scope_queryset(super().get_queryset(request), request.user, self.organization_path)

    def get_list_filter(self, request):
        """Relation filters list only values present in the staff member's rows; the stock
        filter would list every organization's objects."""
        list_filter = super().get_list_filter(request)
        if request.user.is_superuser:
            return list_filter
        return [
            (item, admin.RelatedOnlyFieldListFilter)
            if isinstance(item, str) and _is_relation(self.model, item)
            else item
            for item in list_filter
        ]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and hasattr(field, "queryset"):
            field.queryset = scope_queryset(field.queryset, request.user)
            if db_field.related_model is Organization and field.queryset.count() == 1:
                field.initial = field.queryset.first()
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if field is not None and hasattr(field, "queryset"):
            field.queryset = scope_queryset(field.queryset, request.user)
        return field

    def has_module_permission(self, request):
        return self._is_member(request)

    def has_view_permission(self, request, obj=None):
        return self._is_member(request)

    def has_add_permission(self, request, *args):
        return self._is_member(request)

    def has_change_permission(self, request, obj=None):
        return self._is_member(request)

    def has_delete_permission(self, request, obj=None):
        return self._is_member(request)


class OrganizationScopedAdmin(OrganizationScopedMixin, admin.ModelAdmin):
    pass


class ReadOnlyScopedAdmin(OrganizationScopedAdmin):
    """Lists written by the system (events, logs): visible, searchable, never edited by hand."""

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser
