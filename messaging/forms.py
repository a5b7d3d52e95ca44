"""Admin forms for WhatsApp sending configuration."""

from django import forms

from .models import WhatsAppNumber


class WhatsAppNumberForm(forms.ModelForm):
    """The access token is write-only: typed in, never shown back (not even masked in the
    page source). Left blank on a change, the stored token stays."""

    access_token = forms.CharField(
        max_length=WhatsAppNumber._meta.get_field("access_token").max_length,
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="A system-user token with whatsapp_business_messaging permission. "
        "Leave blank to keep the current token.",
    )

    class Meta:
        model = WhatsAppNumber
        fields = [
            "organization",
            "display_phone_number",
            "phone_number_id",
            "waba_id",
            "access_token",
            "messaging_limit",
            "throughput_mps",
            "mm_lite_terms_accepted",
            "quality_rating",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.pop("access_token", None)

    def clean_access_token(self):
        token = self.cleaned_data["access_token"]
        if token:
            return token
        if self.instance.pk is None:
            raise forms.ValidationError("Enter the number's access token.")
        return self.instance.access_token
