"""Admin forms for audiences and opt-outs."""

from functools import cache

import phonenumbers
from django import forms
from django.conf import settings

from setter.phones import normalize_phone

from .models import Audience, OptOut


@cache
def region_choices() -> list[tuple[str, str]]:
    """Every region libphonenumber knows, as "BR (+55)".

    Country names would need phonenumbers.geocoder, whose data costs ~100 MB per process.
    """
    return [
        (region, f"{region} (+{phonenumbers.country_code_for_region(region)})")
        for region in sorted(phonenumbers.SUPPORTED_REGIONS)
    ]


class AudienceUploadForm(forms.ModelForm):
    """Name, CSV file, the phone column when it is not detected, and the default region."""

    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8 CSV with a header row. A column named phone, phone_e164, "
        "phoneNumber, whatsapp, mobile… holds the numbers; external_id, first_name, "
        "last_name, email and time_zone (an IANA zone such as Europe/London, for sends at "
        "each recipient's local time) are recognised; every other column becomes a variable.",
    )
    phone_column = forms.CharField(
        required=False,
        max_length=100,
        help_text="Header of the phone column, when it is not one of the usual names.",
    )
    default_region = forms.ChoiceField(
        help_text="Country of numbers written without a +country code.",
    )

    class Meta:
        model = Audience
        fields = ["organization", "name", "description", "file", "phone_column", "default_region"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        region = self.fields["default_region"]
        assert isinstance(region, forms.ChoiceField)  # declared above
        region.choices = region_choices()
        region.initial = settings.AUDIENCE_DEFAULT_REGION


class OptOutForm(forms.ModelForm):
    class Meta:
        model = OptOut
        fields = ["organization", "phone_e164", "scope", "note"]
        labels = {"phone_e164": "Phone"}
        help_texts = {"phone_e164": "Any format; stored as E.164 (+countrycode…)."}

    def clean_phone_e164(self):
        raw = self.cleaned_data["phone_e164"]
        phone = normalize_phone(raw, settings.AUDIENCE_DEFAULT_REGION, strict=False)
        if not phone.is_valid:
            raise forms.ValidationError(f"Not a phone number: {raw!r}.")
        return phone.e164
