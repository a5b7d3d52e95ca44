import json

from django.core.management.base import BaseCommand

from config.management.demo import seed_demo
from setter.models import Organization


class Command(BaseCommand):
    help = (
        "Create (or refresh) the demo organization: a staff admin, the sandbox WhatsApp number, "
        "approved templates, a demo audience and a draft campaign with two future sends. "
        "Idempotent; keeps the admin password, API key and signing secret stored in "
        "SETTER_VAR_DIR (minting only what is missing) unless --rotate asks for new ones."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--webhook-auth",
            choices=Organization.InboundAuthMode.values,
            help="Set how partners authenticate the organization's inbound webhooks.",
        )
        parser.add_argument(
            "--rotate",
            action="store_true",
            help="Mint a new admin password, API key and signing secret; revoke the old ones.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON object with ids and secrets."
        )

    def handle(self, *args, **options):
        seed = seed_demo(webhook_auth=options["webhook_auth"], rotate=options["rotate"])
        if options["json"]:
            self.stdout.write(json.dumps(seed.as_json()))
            return
        org = seed.organization
        self.stdout.write(
            "\n".join(
                [
                    f"Demo organization: {org.name} (slug {org.slug}, id {org.pk}), "
                    f"inbound webhook auth: {org.inbound_auth_mode}",
                    f"Admin login:       {seed.login}",
                    f"API key:           {seed.api_key}",
                    f"Signing secret:    {seed.signing_secret}",
                    f"WhatsApp number:   {seed.whatsapp_number} (id {seed.whatsapp_number.pk})",
                    f"Audience:          {seed.audience} (id {seed.audience.pk}, "
                    f"{seed.audience.count_ok} ok of {seed.audience.total_rows} rows)",
                    f"Campaign:          {seed.campaign} (id {seed.campaign.pk}), sends "
                    + ", ".join(
                        f"{s.pk} at {s.scheduled_for:%Y-%m-%d %H:%M} UTC" for s in seed.sends
                    ),
                ]
            )
        )
