"""The demo organization `runstack` starts with: everything a newcomer needs to try a campaign.

Seeding is idempotent: objects are found again by stable names and ids, never duplicated. The
credentials (API key, signing secret, admin password) are kept in SETTER_VAR_DIR, so restarting
does not log anyone out: a run reuses each stored one that still works and mints only what is
missing. A password the user changed is never overwritten (the banner then says so). `rotate`
mints all three anew and revokes the previous demo ones.
"""

import csv
import datetime as dt
import io
import json
import os
import secrets
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from audiences import services as audience_services
from audiences.models import Audience
from campaigns.models import Campaign, Send
from campaigns.services import resolve_local_time
from messaging.models import Category, MessageTemplate, WhatsAppNumber
from setter import services
from setter.models import ApiKey, Membership, Organization, WebhookSigningKey

ORGANIZATION_SLUG = "demo"
ORGANIZATION_NAME = "Demo Co"
ADMIN_USERNAME = "demo-admin"
API_KEY_NAME = "Demo key"
SIGNING_KEY_NAME = "Demo signing key"
AUDIENCE_NAME = "Demo audience"
CAMPAIGN_NAME = "Demo spring sale"
SEND_TIME_ZONE = "Europe/London"
SEND_LOCAL_TIME = dt.time(10, 0)
CREDENTIALS_FILE_NAME = "demo-credentials.json"

# The Meta sandbox (`manage.py meta_sandbox`) knows this number and token.
SANDBOX_PHONE_NUMBER_ID = "100000000000001"
SANDBOX_WABA_ID = "200000000000001"
SANDBOX_ACCESS_TOKEN = "sandbox-access-token"
SANDBOX_DISPLAY_PHONE_NUMBER = "+1 555 010 0001"

MARKETING_TEMPLATE = {
    "name": "spring_sale",
    "category": Category.MARKETING,
    "body_text": "Hi {{1}}, use code {{2}} for 20% off",
    "example": ["Ana", "SPRING-001"],
}
UTILITY_TEMPLATE = {
    "name": "order_shipped",
    "category": Category.UTILITY,
    "body_text": "Your order {{1}} has shipped",
    "example": ["A-1042"],
}
MARKETING_PARAMETERS = ["first_name", "variables.coupon"]
UTILITY_PARAMETERS = ["external_id"]

# Valid numbers in three regions: the UK (limited reporting), Brazil, and the US, which Meta
# blocks for marketing (the audience flags them ineligible_geo). US rows are written without
# a country code, as US partners often do: the audience's default region resolves them.
_UK = [f"+44 7400 1234{n:02d}" for n in range(10)]
_BR = [f"+55 11 9800{n}-10{n:02d}" for n in range(8)]
_US = [f"(212) 555-20{n:02d}" for n in range(7)]
_FIRST_NAMES = [
    "Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Grace", "Hugo", "Iris", "Jon", "Kai",
    "Lara", "Mateus", "Nina", "Otto", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma",
    "Vitor", "Wen", "Xavi", "Yara",
]  # fmt: skip


@dataclass(frozen=True)
class DemoSeed:
    organization: Organization
    api_key: str
    signing_secret: str
    admin_username: str
    admin_password: str | None  # None: the user changed it, we do not know it

    @property
    def login(self) -> str:
        password = self.admin_password or "(the password you set; demo_seed --rotate mints one)"
        return f"{self.admin_username} / {password}"

    whatsapp_number: WhatsAppNumber
    audience: Audience
    campaign: Campaign
    sends: list[Send]

    def as_json(self) -> dict:
        return {
            "organization_id": self.organization.pk,
            "organization_slug": self.organization.slug,
            "api_key": self.api_key,
            "signing_secret": self.signing_secret,
            "admin_username": self.admin_username,
            "admin_password": self.admin_password,
            "whatsapp_number_id": self.whatsapp_number.pk,
            "audience_id": self.audience.pk,
            "campaign_id": self.campaign.pk,
            "send_ids": [send.pk for send in self.sends],
        }


def demo_csv() -> bytes:
    """25 demo leads: phone, ids, names, email and a `coupon` substitution variable."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["phone", "external_id", "first_name", "last_name", "email", "coupon"])
    for n, (phone, first_name) in enumerate(zip(_UK + _BR + _US, _FIRST_NAMES, strict=True), 1):
        writer.writerow(
            [
                phone,
                f"demo-{n:03d}",
                first_name,
                "Demo",
                f"{first_name.lower()}@example.com",
                f"SPRING-{n:03d}",
            ]
        )
    return buffer.getvalue().encode()


def credentials_file() -> Path:
    return settings.VAR_DIR / CREDENTIALS_FILE_NAME


def seed_demo(*, webhook_auth: str | None = None, rotate: bool = False) -> DemoSeed:
    stored = {} if rotate else _read_credentials()
    with transaction.atomic():
        organization, _ = Organization.objects.get_or_create(
            slug=ORGANIZATION_SLUG, defaults={"name": ORGANIZATION_NAME}
        )
        if webhook_auth is not None and organization.inbound_auth_mode != webhook_auth:
            organization.inbound_auth_mode = webhook_auth
            organization.save(update_fields=["inbound_auth_mode"])
        admin_password = _seed_admin(organization, stored.get("admin_password"), rotate)
        api_key = _seed_api_key(organization, stored.get("api_key"))
        signing_secret = _seed_signing_secret(organization, stored.get("signing_secret"))
    _write_credentials(
        {
            "admin_password": admin_password,
            "api_key": api_key,
            "signing_secret": signing_secret,
        }
    )
    with transaction.atomic():
        number = _seed_number(organization)
        marketing = _seed_template(organization, MARKETING_TEMPLATE)
        utility = _seed_template(organization, UTILITY_TEMPLATE)
    # Ingest runs its own transactions, like it does in a worker.
    audience = _seed_audience(organization)
    with transaction.atomic():
        campaign = _seed_campaign(organization, number, audience)
        sends = _seed_sends(campaign, marketing, utility)
    return DemoSeed(
        organization=organization,
        api_key=api_key,
        signing_secret=signing_secret,
        admin_username=ADMIN_USERNAME,
        admin_password=admin_password,
        whatsapp_number=number,
        audience=audience,
        campaign=campaign,
        sends=sends,
    )


def _read_credentials() -> dict:
    try:
        stored = json.loads(credentials_file().read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return stored if isinstance(stored, dict) else {}


def _write_credentials(credentials: dict) -> None:
    """Owner-only, written whole then renamed in, so a crash never leaves half a file."""
    path = credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(credentials, file)
    os.replace(temporary, path)


def _seed_admin(
    organization: Organization, stored_password: str | None, rotate: bool
) -> str | None:
    """A staff user who sees only the demo organization; returns its password.

    The stored password is kept while it still logs in. A user found with another password
    changed it (or predates the stored file): that one is left alone and None returned, unless
    `rotate` asks for a new one.
    """
    user, created = get_user_model().objects.get_or_create(
        username=ADMIN_USERNAME, defaults={"email": "demo-admin@example.com"}
    )
    user.is_staff = True
    user.is_active = True
    if created or rotate:
        password = secrets.token_urlsafe(12)
        user.set_password(password)
    elif stored_password and user.check_password(stored_password):
        password = stored_password
    else:
        password = None
    user.save()
    Membership.objects.get_or_create(user=user, organization=organization)
    return password


def _seed_api_key(organization: Organization, stored_key: str | None) -> str:
    """The stored demo key while it still authenticates; else a new one, the old revoked."""
    demo_keys = ApiKey.objects.active().filter(organization=organization, name=API_KEY_NAME)
    if stored_key and demo_keys.filter(key_hash=services.hash_api_key(stored_key)).exists():
        return stored_key
    for api_key in demo_keys:
        services.revoke_api_key(api_key)
    return services.create_api_key(organization, API_KEY_NAME)[1]


def _seed_signing_secret(organization: Organization, stored_secret: str | None) -> str:
    """The stored demo signing secret while its key is active; else a new one, the old revoked."""
    demo_keys = WebhookSigningKey.objects.active().filter(
        organization=organization, name=SIGNING_KEY_NAME
    )
    if stored_secret and demo_keys.filter(secret=stored_secret).exists():
        return stored_secret
    for signing_key in demo_keys:
        services.revoke_signing_key(signing_key)
    return services.create_signing_key(organization, SIGNING_KEY_NAME).secret


def _seed_number(organization: Organization) -> WhatsAppNumber:
    number, _ = WhatsAppNumber.objects.update_or_create(
        phone_number_id=SANDBOX_PHONE_NUMBER_ID,
        defaults={
            "organization": organization,
            "display_phone_number": SANDBOX_DISPLAY_PHONE_NUMBER,
            "waba_id": SANDBOX_WABA_ID,
            "access_token": SANDBOX_ACCESS_TOKEN,
            "messaging_limit": WhatsAppNumber.MessagingLimit.TIER_10K,
            "mm_lite_terms_accepted": True,
        },
    )
    return number


def _seed_template(organization: Organization, spec: dict) -> MessageTemplate:
    template, _ = MessageTemplate.objects.update_or_create(
        organization=organization,
        name=spec["name"],
        language="en_US",
        defaults={
            "waba_id": SANDBOX_WABA_ID,
            "category": spec["category"],
            "status": MessageTemplate.Status.APPROVED,
            "body_text": spec["body_text"],
            "components": [
                {
                    "type": "BODY",
                    "text": spec["body_text"],
                    "example": {"body_text": [spec["example"]]},
                }
            ],
        },
    )
    return template


def _seed_audience(organization: Organization) -> Audience:
    ready = Audience.objects.filter(
        organization=organization, name=AUDIENCE_NAME, status=Audience.Status.READY
    ).first()
    if ready is not None:
        return ready
    # A previous run died mid-ingest: start that audience over.
    Audience.objects.filter(organization=organization, name=AUDIENCE_NAME).delete()
    audience = audience_services.create_csv_audience(
        organization=organization,
        name=AUDIENCE_NAME,
        file=ContentFile(demo_csv(), name="demo-audience.csv"),
        default_region="US",
        enqueue=False,
    )
    return audience_services.ingest_audience(audience.pk)


def _seed_campaign(
    organization: Organization, number: WhatsAppNumber, audience: Audience
) -> Campaign:
    campaign = Campaign.objects.filter(organization=organization, name=CAMPAIGN_NAME).first()
    if campaign is None:
        campaign = Campaign.objects.create(
            organization=organization,
            name=CAMPAIGN_NAME,
            description="Seeded by demo_seed: a two-step spring sale to the demo audience.",
            whatsapp_number=number,
            product_policy_confirmed=True,
        )
    campaign.audiences.add(audience)
    return campaign


def _seed_sends(
    campaign: Campaign, marketing: MessageTemplate, utility: MessageTemplate
) -> list[Send]:
    """Two sends, tomorrow and the day after at 10:00 London time.

    While the campaign is a draft its two sends are moved forward to those dates on every run,
    so the demo always has future sends; a campaign someone scheduled is left as it is.
    """
    if campaign.status != Campaign.Status.DRAFT:
        return list(campaign.sends.filter(position__in=[0, 1]).order_by("position"))
    today = timezone.now().astimezone(zoneinfo.ZoneInfo(SEND_TIME_ZONE)).date()
    specs: list[dict[str, Any]] = [
        {
            "name": "Spring sale (skips buyers)",
            "local_date": today + dt.timedelta(days=1),
            "category": Category.MARKETING,
            "template": marketing,
            "parameter_mapping": MARKETING_PARAMETERS,
            "audience_filter_mode": Send.AudienceFilterMode.WEBHOOK_FILTERED,
            "event_filter_mode": Send.EventFilterMode.EXCLUDE,
            "event_filter_type": "purchase",
        },
        {
            "name": "Order update",
            "local_date": today + dt.timedelta(days=2),
            "category": Category.UTILITY,
            "template": utility,
            "parameter_mapping": UTILITY_PARAMETERS,
            "audience_filter_mode": Send.AudienceFilterMode.OFF,
            "event_filter_mode": Send.EventFilterMode.OFF,
            "event_filter_type": "",
        },
    ]
    sends = []
    for position, spec in enumerate(specs):
        instant = resolve_local_time(spec["local_date"], SEND_LOCAL_TIME, SEND_TIME_ZONE)
        send, _ = Send.objects.update_or_create(
            campaign=campaign,
            position=position,
            defaults={
                **spec,
                "local_time": SEND_LOCAL_TIME,
                "time_zone": SEND_TIME_ZONE,
                "scheduled_for": instant.utc,
                "status": Send.Status.PENDING,
            },
        )
        sends.append(send)
    return sends
