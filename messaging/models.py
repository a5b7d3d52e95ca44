"""WhatsApp sending configuration: business numbers and their Meta-approved templates."""

import re
from dataclasses import dataclass

from django.db import models

from setter.models import Organization


class Category(models.TextChoices):
    """A send's category decides the Meta endpoint and which templates it may use."""

    MARKETING = "MARKETING", "Marketing (Marketing Messages Lite)"
    UTILITY = "UTILITY", "Utility (Cloud API)"


class ProductPolicy(models.TextChoices):
    """Meta's `product_policy` on a Marketing Messages Lite call: what Meta may do with a
    message MM Lite cannot take."""

    CLOUD_API_FALLBACK = "CLOUD_API_FALLBACK", "Fall back to the Cloud API (Meta's default)"
    STRICT = "STRICT", "Marketing Messages Lite only: no fallback"


class WhatsAppNumber(models.Model):
    class MessagingLimit(models.TextChoices):
        # Meta's messaging_limit_tier values: unique recipients per rolling 24 hours.
        TIER_50 = "TIER_50", "50 recipients / 24 h"
        TIER_250 = "TIER_250", "250 recipients / 24 h"
        TIER_1K = "TIER_1K", "1,000 recipients / 24 h"
        TIER_2K = "TIER_2K", "2,000 recipients / 24 h"
        TIER_10K = "TIER_10K", "10,000 recipients / 24 h"
        TIER_100K = "TIER_100K", "100,000 recipients / 24 h"
        TIER_UNLIMITED = "TIER_UNLIMITED", "Unlimited"

    LIMIT_COUNTS: dict[str, int | None] = {
        MessagingLimit.TIER_50: 50,
        MessagingLimit.TIER_250: 250,
        MessagingLimit.TIER_1K: 1_000,
        MessagingLimit.TIER_2K: 2_000,
        MessagingLimit.TIER_10K: 10_000,
        MessagingLimit.TIER_100K: 100_000,
        MessagingLimit.TIER_UNLIMITED: None,
    }

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="whatsapp_numbers"
    )
    display_phone_number = models.CharField(max_length=32)
    phone_number_id = models.CharField(max_length=64, unique=True)
    waba_id = models.CharField("WABA id", max_length=64)
    access_token = models.CharField(max_length=512)
    messaging_limit = models.CharField(
        max_length=16, choices=MessagingLimit.choices, default=MessagingLimit.TIER_250
    )
    throughput_mps = models.PositiveIntegerField(
        "throughput cap (messages/s)",
        default=80,
        help_text="Meta's per-number throughput: 80 by default, up to 1,000 when upgraded.",
    )
    mm_lite_terms_accepted = models.BooleanField(
        "MM Lite terms accepted",
        default=False,
        help_text="The WABA accepted the Marketing Messages Lite terms in Meta's App Dashboard.",
    )
    quality_rating = models.CharField(max_length=16, blank=True)
    # The latest phone_number_quality_update event (FLAGGED, UNFLAGGED, UPGRADE, …) and when.
    quality_event = models.CharField(max_length=32, blank=True)
    quality_event_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["display_phone_number"]
        verbose_name = "WhatsApp number"

    def __str__(self):
        return self.display_phone_number

    @property
    def messaging_limit_count(self) -> int | None:
        """Unique recipients allowed per 24 h; None means unlimited."""
        return self.LIMIT_COUNTS[self.messaging_limit]


PARAMETER_PATTERN = re.compile(r"\{\{\s*(\d+)\s*\}\}")


class MessageTemplate(models.Model):
    class Status(models.TextChoices):
        APPROVED = "APPROVED", "Approved"
        PENDING = "PENDING", "Pending"
        REJECTED = "REJECTED", "Rejected"
        PAUSED = "PAUSED", "Paused"
        DISABLED = "DISABLED", "Disabled"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="message_templates"
    )
    waba_id = models.CharField("WABA id", max_length=64, blank=True)
    name = models.CharField(max_length=512)
    language = models.CharField(max_length=16, default="en_US")
    category = models.CharField(max_length=16, choices=Category.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    body_text = models.TextField(help_text="Body with positional parameters {{1}}, {{2}}, …")
    components = models.JSONField(default=list, blank=True, help_text="As synced from Meta.")
    meta_template_id = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name", "language"], name="unique_template_per_org"
            )
        ]

    def __str__(self):
        return f"{self.name} ({self.language}, {self.get_category_display()})"

    @property
    def parameter_count(self) -> int:
        """Highest positional parameter in the body: {{1}} … {{n}}."""
        return max((int(n) for n in PARAMETER_PATTERN.findall(self.body_text)), default=0)

    @property
    def parameter_slots(self) -> tuple["ParameterSlot", ...]:
        """Every parameter a send of this template fills, in the order a send's mapping
        lists them: the body's {{1}} … {{n}}, the text header's, then each URL button's."""
        return parameter_slots(self.body_text, self.components)


@dataclass(frozen=True)
class ParameterSlot:
    """One parameter of a template: {{position}} of the body, of the text header, or of the
    URL of the button at `button_index` (its place among the template's buttons, which is
    the `index` Meta's button component names). `text`: the header's text or the button's
    URL it sits in, for the editor's preview."""

    BODY = "body"
    HEADER = "header"
    BUTTON = "button"

    component: str
    position: int
    button_index: int | None = None
    button_text: str = ""
    text: str = ""

    @property
    def label(self) -> str:
        """How the editor and every error name it: {{1}}, header {{1}}, button Shop {{1}}."""
        placeholder = f"{{{{{self.position}}}}}"
        if self.component == self.BODY:
            return placeholder
        if self.component == self.HEADER:
            return f"header {placeholder}"
        return f"{f'button {self.button_text}'.strip()} {placeholder}"


def _positions(text) -> list[int]:
    """1 … the highest {{n}} of a text (Meta numbers a component's parameters from 1)."""
    return list(range(1, max(map(int, PARAMETER_PATTERN.findall(str(text or "")) or [0])) + 1))


def parameter_slots(body_text: str, components) -> tuple[ParameterSlot, ...]:
    """The slots of a template with this body and these components (as synced from Meta):
    a header's text parameters only in a TEXT header, a button's only in a URL button."""
    slots = [ParameterSlot(ParameterSlot.BODY, n) for n in _positions(body_text)]
    buttons: list[ParameterSlot] = []
    for component in components if isinstance(components, list) else []:
        if not isinstance(component, dict):
            continue
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER" and str(component.get("format", "TEXT")).upper() == "TEXT":
            text = str(component.get("text") or "")
            slots += [ParameterSlot(ParameterSlot.HEADER, n, text=text) for n in _positions(text)]
        elif kind == "BUTTONS":
            for index, button in enumerate(component.get("buttons") or []):
                if isinstance(button, dict) and str(button.get("type", "")).upper() == "URL":
                    label, url = str(button.get("text", "")), str(button.get("url") or "")
                    buttons += [
                        ParameterSlot(ParameterSlot.BUTTON, n, index, label, url)
                        for n in _positions(url)
                    ]
    return (*slots, *buttons)
