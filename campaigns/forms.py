"""The campaign editor's forms: thin shells over the rules in campaigns.services."""

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html, format_html_join

from messaging.time_zones import organization_time_zone

from . import selectors, services
from .models import Campaign, Send


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = [
            "organization",
            "name",
            "description",
            "whatsapp_number",
            "audiences",
            "product_policy_confirmed",
            "product_policy",
            "stop_at",
            "window_start",
            "window_end",
            "window_days",
            "window_outside",
        ]

    def _post_clean(self):
        super()._post_clean()  # type: ignore[misc]  # a private ModelForm hook the stubs omit
        if self.errors:
            return
        if SCHEDULE_FIELDS & set(self.changed_data):
            # A time the marketer typed wins over "when the campaign starts" set by the API.
            self.instance.start_offset_minutes = None
        # The sends' forms check their parameters against the audiences chosen here, which
        # are not on the (maybe unsaved) campaign until the whole page is saved.
        self.instance.audiences_being_saved = list(self.cleaned_data.get("audiences", ()))
        try:
            services.validate_campaign(self.instance, self.cleaned_data.get("audiences", ()))
        except ValidationError as error:
            self._update_errors(error)  # type: ignore[attr-defined]  # private, as above


def _time_zone_choices():
    return [(name, name) for name in services.time_zone_names()]


SCHEDULE_FIELDS = {"local_date", "local_time", "time_zone", "recipient_local_time"}


class TimeZoneInput(forms.TextInput):
    """A text box that finds a zone as the marketer types ("sao" → America/Sao_Paulo): an
    HTML datalist of every zone, since 600 zones do not fit a drop-down."""

    def render(self, name, value, attrs=None, renderer=None):
        list_id = f"{(attrs or {}).get('id', name)}-zones"
        attrs = {**(attrs or {}), "list": list_id, "autocomplete": "off", "size": 28}
        zones = format_html_join(
            "", '<option value="{}">', ((z,) for z in services.time_zone_names())
        )
        return format_html(
            '{}<datalist id="{}">{}</datalist>',
            super().render(name, value, attrs, renderer),
            list_id,
            zones,
        )


class TemplateSelect(forms.Select):
    """The template drop-down; each option carries its category, so the page offers only
    the templates of the category the send has (the form refuses any other)."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        template = getattr(value, "instance", None)
        if template is not None:
            option["attrs"]["data-category"] = template.category
        return option


class SendForm(forms.ModelForm):
    """One send of the campaign being edited; `campaign` is that campaign, even unsaved."""

    time_zone = forms.ChoiceField(
        choices=_time_zone_choices, initial="UTC", widget=TimeZoneInput, help_text="Type to search."
    )

    class Meta:
        model = Send
        fields = [
            "position",
            "name",
            "local_date",
            "local_time",
            "time_zone",
            "recipient_local_time",
            "category",
            "template",
            "parameter_mapping",
            "audience_filter_mode",
            "event_filter_mode",
            "event_filter_type",
            "event_filter_within_minutes",
            "max_messages_per_second",
        ]
        labels = {"position": "Order"}
        widgets = {"template": TemplateSelect}
        help_texts = {
            "parameter_mapping": "Pick a column or a fixed text for each parameter of the "
            "template. Stored as one entry per parameter, the body's {{n}} first, then the text "
            'header\'s, then each URL button\'s: a column ("first_name", "variables.coupon") '
            "or a fixed text in double quotes.",
        }

    def __init__(self, *args, campaign: Campaign | None = None, organization=None, **kwargs):
        """`organization`: the campaign's when it has none yet (a new campaign of a staff
        member of one organization), for the zone a new send starts in."""
        super().__init__(*args, **kwargs)
        self.campaign = campaign
        self.resolved: services.ResolvedInstant | None = None
        if "template" in self.fields:
            self._offer_templates()
        if self.instance.pk is None and campaign is not None:
            # A new send follows the last one, in the organization's zone.
            self.initial["position"] = selectors.next_send_position(campaign)
            organization = campaign.organization if campaign.organization_id else organization
            if organization is not None:
                self.initial["time_zone"] = organization_time_zone(organization)

    @property
    def number(self):
        """The campaign's WhatsApp number, once chosen (on the page being saved, too)."""
        campaign = self.campaign
        return campaign.whatsapp_number if campaign and campaign.whatsapp_number_id else None

    def _offer_templates(self):
        """The organization's APPROVED templates of the number's WABA, and the send's current
        one (so a template paused since shows, and the form says why it no longer fits)."""
        field = self.fields["template"]
        assert isinstance(field, forms.ModelChoiceField)  # the model's ForeignKey
        templates = field.queryset
        assert templates is not None  # a ForeignKey's field always has one; the stub allows None
        if self.campaign is not None and self.campaign.organization_id:
            templates = templates.filter(organization_id=self.campaign.organization_id)
        offered = services.offered_templates(templates, self.number)
        field.queryset = templates.filter(
            Q(pk__in=offered.values("pk")) | Q(pk=self.instance.template_id)
        )
        field.error_messages["invalid_choice"] = (
            "Pick one of the templates offered: the organization's APPROVED templates of the "
            "number's WABA."
        )

    def _post_clean(self):
        """After the model's own checks, the editor's: a real local time, the organization's
        template, a mapping that fits it, a complete event filter."""
        super()._post_clean()  # type: ignore[misc]  # a private ModelForm hook the stubs omit
        if self.errors:
            return
        if SCHEDULE_FIELDS & set(self.changed_data):
            # A time the marketer typed wins over "when the campaign starts" set by the API.
            self.instance.start_offset_minutes = None
        if self.instance.pk is None or {"template", "category"} & set(self.changed_data):
            problem = services.template_choice_problem(
                self.instance.template, self.number, self.instance.category
            )
            if problem:
                self.add_error("template", problem)
                return
        try:
            self.resolved = services.validate_send(
                self.instance, self.campaign, variables=self._audience_variables()
            )
        except ValidationError as error:
            self._update_errors(error)  # type: ignore[attr-defined]  # private, as above

    def _audience_variables(self) -> set[str] | None:
        campaign = self.campaign
        if campaign is None:
            return None
        audiences = getattr(campaign, "audiences_being_saved", None)
        if audiences is None:
            audiences = campaign.audiences.all() if campaign.pk else ()
        return selectors.available_variables(audiences)


class SendInlineFormSet(BaseInlineFormSet):
    """The campaign's sends. `visible_sends` are the sends a row's hidden id may name (those
    the staff member may see); by default the campaign's own. Django's default accepts
    the id of any send of any organization."""

    def __init__(self, *args, visible_sends=None, organization=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.visible_sends = visible_sends
        self.organization = organization

    def get_form_kwargs(self, index):
        return {
            **super().get_form_kwargs(index),
            "campaign": self.instance,
            "organization": self.organization,
        }

    def add_fields(self, form, index):
        super().add_fields(form, index)
        visible = self.visible_sends if self.visible_sends is not None else self.get_queryset()
        form.fields[self.model._meta.pk.name].queryset = visible
