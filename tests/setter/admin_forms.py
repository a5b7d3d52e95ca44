"""What a browser would post back for an admin change form: the tests' way to submit one."""

from django import forms
from django.contrib.admin.widgets import RelatedFieldWidgetWrapper


def change_form_post_data(response, **changes) -> dict:
    """The unedited POST body of the admin form rendered in `response`, with `changes` applied.

    Inlines post their existing rows only (no extra blank forms).
    """
    data = {}
    _add_form(data, response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        existing = len(formset.initial_forms)
        data[management.add_prefix("TOTAL_FORMS")] = str(existing)
        data[management.add_prefix("INITIAL_FORMS")] = str(existing)
        data[management.add_prefix("MIN_NUM_FORMS")] = "0"
        data[management.add_prefix("MAX_NUM_FORMS")] = "1000"
        for form in formset.initial_forms:
            _add_form(data, form)
    data.update(changes)
    return data


def choice_fields(response) -> dict[str, forms.ModelChoiceField]:
    """Every foreign-key / many-to-many choice field of the form and its inlines, by html name."""
    all_forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        all_forms.append(inline.formset.empty_form)
    return {
        bound.html_name: bound.field
        for form in all_forms
        for bound in form
        if isinstance(bound.field, forms.ModelChoiceField)
    }


def _add_form(data: dict, form) -> None:
    for bound in form:
        widget = bound.field.widget
        if isinstance(widget, RelatedFieldWidgetWrapper):
            widget = widget.widget
        value = bound.value()
        if isinstance(widget, forms.FileInput):
            continue  # no upload keeps the stored file
        if isinstance(widget, forms.CheckboxInput):
            if value:
                data[bound.html_name] = "on"
        elif isinstance(widget, forms.MultiWidget):
            parts = value if isinstance(value, list | tuple) else widget.decompress(value)
            for suffix, sub_widget, part in zip(
                widget.widgets_names, widget.widgets, parts, strict=True
            ):
                data[bound.html_name + suffix] = sub_widget.format_value(part) or ""
        else:
            formatted = widget.format_value(value)
            data[bound.html_name] = "" if formatted is None else formatted
