"""The campaign editor's forms: thin shells over the rules in campaigns.services."""

from django import forms
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

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


SCHEDULE_FIELDS = {"local_date", "local_time", "time_zone"}


class SendForm(forms.ModelForm):
    """One send of the campaign being edited; `campaign` is that campaign, even unsaved."""

    time_zone = forms.ChoiceField(choices=_time_zone_choices, initial="UTC")

    class Meta:
        model = Send
        fields = [
            "position",
            "name",
            "local_date",
            "local_time",
            "time_zone",
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

    def __init__(self, *args, campaign: Campaign | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.campaign = campaign
        self.resolved: services.ResolvedInstant | None = None
        if campaign is not None and campaign.organization_id and "template" in self.fields:
            template = self.fields["template"]
            assert isinstance(template, forms.ModelChoiceField)  # the model's ForeignKey
            # A ForeignKey's field always has its queryset; the stub allows None.
            template.queryset = template.queryset.filter(  # type: ignore[union-attr]
                organization_id=campaign.organization_id
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

    def __init__(self, *args, visible_sends=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.visible_sends = visible_sends

    def get_form_kwargs(self, index):
        return {**super().get_form_kwargs(index), "campaign": self.instance}

    def add_fields(self, form, index):
        super().add_fields(form, index)
        visible = self.visible_sends if self.visible_sends is not None else self.get_queryset()
        form.fields[self.model._meta.pk.name].queryset = visible
