"""Keeping our copy of Meta's state current: templates, their status, the number's limits.

Meta is the source of truth for templates and messaging limits; we copy them so that
scheduling can be gated without a Graph API call (an unapproved, paused or disabled
template, or a tier too small for the audience, blocks a send before it fires).
"""

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from django.db import models, transaction
from django.utils import timezone

from . import signals
from .client import WhatsAppClient
from .models import Category, MessageTemplate, WhatsAppNumber

logger = logging.getLogger(__name__)

Status = MessageTemplate.Status
Tier = WhatsAppNumber.MessagingLimit

# Meta's template statuses (list and webhook events) as the statuses we gate on; anything
# not listed leaves the template unusable as PENDING rather than guessing it is approved.
TEMPLATE_STATUSES = {
    "APPROVED": Status.APPROVED,
    "REINSTATED": Status.APPROVED,
    "PENDING": Status.PENDING,
    "IN_APPEAL": Status.PENDING,
    "REJECTED": Status.REJECTED,
    "PAUSED": Status.PAUSED,
    "LIMIT_EXCEEDED": Status.PAUSED,
    "DISABLED": Status.DISABLED,
    "PENDING_DELETION": Status.DISABLED,
    "DELETED": Status.DISABLED,
    "ARCHIVED": Status.DISABLED,
}
# Webhook events that say nothing about whether the template may be sent.
NEUTRAL_TEMPLATE_EVENTS = {"FLAGGED"}

# Meta tiers we do not model map to the nearest one we do: TIER_1K numbers became 2K in
# Meta's 2025 limit change; TIER_50 is below our lowest tier.
MESSAGING_TIERS = {
    "TIER_50": Tier.TIER_50,
    "TIER_250": Tier.TIER_250,
    "TIER_1K": Tier.TIER_1K,
    "TIER_2K": Tier.TIER_2K,
    "TIER_10K": Tier.TIER_10K,
    "TIER_100K": Tier.TIER_100K,
    "TIER_UNLIMITED": Tier.TIER_UNLIMITED,
}
THROUGHPUT_MPS = {"STANDARD": 80, "HIGH": 1000}


def _body_text(components: list | None) -> str:
    for component in components or []:
        if isinstance(component, dict) and str(component.get("type", "")).upper() == "BODY":
            return str(component.get("text") or "")
    return ""


@dataclass
class TemplateSync:
    """What a template sync changed, by template ("welcome (en_US)"), for people to read."""

    created: list[str] = field(default_factory=list)
    # (template, status before, status now)
    status_changed: list[tuple[str, str, str]] = field(default_factory=list)
    # Other fields changed (body, components, Meta's id): the status is the same.
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: int = 0  # categories we do not send (AUTHENTICATION, …)

    @property
    def counts(self) -> Counter:
        return Counter(
            created=len(self.created),
            updated=len(self.status_changed) + len(self.updated),
            unchanged=self.unchanged,
            skipped=self.skipped,
            removed=len(self.removed),
        )


def sync_templates(number: WhatsAppNumber, client: WhatsAppClient | None = None) -> TemplateSync:
    """Copy the WABA's MARKETING and UTILITY templates into the number's organization.

    Our templates of this WABA that Meta no longer lists are marked DISABLED (removed).
    """
    remote = (client or WhatsAppClient()).list_templates(number)
    sync = TemplateSync()
    seen = set()
    with transaction.atomic():
        existing = {
            (t.name, t.language): t
            for t in MessageTemplate.objects.select_for_update().filter(
                organization=number.organization
            )
        }
        for item in remote:
            category = str(item.get("category", "")).upper()
            if category not in Category.values:
                sync.skipped += 1
                continue
            key = (str(item["name"]), str(item["language"]))
            label = f"{key[0]} ({key[1]})"
            seen.add(key)
            fields: dict[str, Any] = {
                "waba_id": number.waba_id,
                "category": category,
                "status": TEMPLATE_STATUSES.get(str(item.get("status", "")), Status.PENDING),
                "components": item.get("components") or [],
                "body_text": _body_text(item.get("components")),
                "meta_template_id": str(item.get("id") or ""),
            }
            template = existing.get(key)
            if template is None:
                MessageTemplate.objects.create(
                    organization=number.organization, name=key[0], language=key[1], **fields
                )
                sync.created.append(label)
            elif any(getattr(template, name) != value for name, value in fields.items()):
                if template.status != fields["status"]:
                    sync.status_changed.append((label, template.status, fields["status"]))
                else:
                    sync.updated.append(label)
                for name, value in fields.items():
                    setattr(template, name, value)
                template.save()
            else:
                sync.unchanged += 1
        gone = [
            t
            for key, t in sorted(existing.items())
            if key not in seen and t.waba_id == number.waba_id and t.status != Status.DISABLED
        ]
        MessageTemplate.objects.filter(pk__in=[t.pk for t in gone]).update(status=Status.DISABLED)
        sync.removed = [f"{t.name} ({t.language})" for t in gone]
    return sync


# At most this many templates are named per kind of change; the rest are counted.
NAMED_CHANGES = 10


def _named(labels: list[str]) -> str:
    shown = ", ".join(labels[:NAMED_CHANGES])
    more = len(labels) - NAMED_CHANGES
    return f"{shown} and {more} more" if more > 0 else shown


@dataclass
class MetaSync:
    """One number's sync from Meta: its own fields and its WABA's templates."""

    number: WhatsAppNumber
    number_changed: list[str]
    templates: TemplateSync

    def summary(self) -> str:
        """One line for the admin and the command: what changed, by name."""
        templates = self.templates
        parts = []
        if templates.created:
            parts.append(f"new templates: {_named(templates.created)}")
        if templates.status_changed:
            changes = [f"{label} {old} → {new}" for label, old, new in templates.status_changed]
            parts.append(f"status changed: {_named(changes)}")
        if templates.updated:
            parts.append(f"content changed: {_named(templates.updated)}")
        if templates.removed:
            parts.append(f"removed by Meta (now DISABLED): {_named(templates.removed)}")
        if not parts:
            parts.append(f"templates unchanged ({templates.unchanged})")
        if templates.skipped:
            parts.append(f"{templates.skipped} of other categories not copied")
        # All concrete fields; the stub of get_field also returns relations without verbose_name.
        fields = [
            str(cast(models.Field, WhatsAppNumber._meta.get_field(name)).verbose_name)
            for name in self.number_changed
        ]
        number = f"number's {', '.join(fields)} updated" if fields else "number unchanged"
        return f"{self.number}: {number}; " + "; ".join(parts) + "."


def sync_from_meta(number: WhatsAppNumber, client: WhatsAppClient | None = None) -> MetaSync:
    """The number's limits and its templates, as the admin's buttons and sync_whatsapp do it."""
    client = client or WhatsAppClient()
    changed = sync_number(number, client)
    return MetaSync(number, changed, sync_templates(number, client))


def sync_number(number: WhatsAppNumber, client: WhatsAppClient | None = None) -> list[str]:
    """Refresh the number's messaging limit tier, quality rating and throughput from Meta.

    Returns the names of the fields that changed.
    """
    details = (client or WhatsAppClient()).get_number(number)
    wanted = {
        "quality_rating": details.quality_rating,
        "messaging_limit": MESSAGING_TIERS.get(details.messaging_limit_tier),
        "throughput_mps": THROUGHPUT_MPS.get(details.throughput_level),
        "display_phone_number": details.display_phone_number,
    }
    if details.messaging_limit_tier and wanted["messaging_limit"] is None:
        logger.warning("unknown messaging limit tier %r", details.messaging_limit_tier)
    changed = [
        name
        for name, value in wanted.items()
        if value not in (None, "") and getattr(number, name) != value
    ]
    for name in changed:
        setattr(number, name, wanted[name])
    if changed:
        number.save(update_fields=changed)
    if "quality_rating" in changed and number.quality_rating in DEGRADED_QUALITY:
        _quality_degraded(number, number.quality_rating)
    return changed


def apply_template_status_update(value: dict, waba_id: str | None = None) -> int:
    """Apply one `message_template_status_update` webhook value; returns templates changed.

    The template is found by Meta's id; templates created before a sync have none, so they
    are found by name and language within the WABA, only when waba_id (the webhook entry's
    id) is given: a name alone could belong to another organization.
    """
    event = str(value.get("event", "")).upper()
    status = TEMPLATE_STATUSES.get(event)
    if status is None:
        if event not in NEUTRAL_TEMPLATE_EVENTS:
            logger.warning("unknown template status event %r", event)
        return 0
    meta_id = str(value.get("message_template_id") or "")
    matches = MessageTemplate.objects.filter(meta_template_id=meta_id) if meta_id else None
    if (matches is None or not matches.exists()) and waba_id:
        matches = MessageTemplate.objects.filter(
            waba_id=waba_id,
            name=str(value.get("message_template_name", "")),
            language=str(value.get("message_template_language", "")),
        )
    if matches is None:
        return 0
    return matches.exclude(status=status).update(status=status, updated_at=timezone.now())


# phone_number_quality_update events (Meta's webhook reference).
QUALITY_EVENTS = frozenset(
    {"DOWNGRADE", "FLAGGED", "ONBOARDING", "THROUGHPUT_UPGRADE", "UNFLAGGED", "UPGRADE"}
)
# Quality that pauses the number's campaigns: a flag from the webhook, RED from the Graph API.
DEGRADED_QUALITY = frozenset({"FLAGGED", "RED"})


class QualityUpdate(NamedTuple):
    number: WhatsAppNumber
    event: str
    changed: list[str]
    paused_sends: list[int]  # by the quality guard, when the event is a degraded quality


def _quality_degraded(number: WhatsAppNumber, event: str) -> list[int]:
    """Tell the apps above (the quality guard) and return the sends they paused."""
    responses = signals.quality_degraded.send(sender=WhatsAppNumber, number=number, event=event)
    paused: list[int] = []
    for _, result in responses:
        paused.extend(cast(list[int], result or []))
    return paused


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def apply_quality_update(value: dict, *, waba_id: str) -> QualityUpdate | None:
    """Apply one `phone_number_quality_update` webhook value to its number: the event and the
    messaging limit Meta now applies. The number is found by its WABA (the entry's id) and
    its display number, as Meta names it in this webhook. None when it is not ours.

    An unknown event or tier is refused loudly (logged, the number left as it was), never
    guessed at: a wrong limit would let the gate overshoot Meta's."""
    display = _digits(str(value.get("display_phone_number") or ""))
    event = str(value.get("event") or "").upper()
    if event not in QUALITY_EVENTS:
        logger.warning("unknown phone_number_quality_update event %r ignored", event)
        return None
    number = next(
        (
            candidate
            for candidate in WhatsAppNumber.objects.filter(waba_id=waba_id)
            if display and _digits(candidate.display_phone_number) == display
        ),
        None,
    )
    if number is None:
        return None
    changed = ["quality_event", "quality_event_at"]
    number.quality_event, number.quality_event_at = event, timezone.now()
    tier_name = str(
        value.get("max_daily_conversations_per_business") or value.get("current_limit") or ""
    )
    tier = MESSAGING_TIERS.get(tier_name)
    if tier is None and tier_name not in ("", "TIER_NOT_SET"):
        logger.warning("unknown messaging limit tier %r of %s ignored", tier_name, number)
    if tier is not None and tier != number.messaging_limit:
        number.messaging_limit = tier
        changed.append("messaging_limit")
    number.save(update_fields=changed)
    paused = _quality_degraded(number, event) if event in DEGRADED_QUALITY else []
    return QualityUpdate(number, event, changed, paused)
