import argparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from messaging.sandbox.app import Sandbox
from messaging.sandbox.server import registry_from_database, serve_forever
from messaging.sandbox.state import SandboxConfig


def ratio(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Run the Meta sandbox: a Graph API server for template sends, template lists and "
        "number details, with injectable latency and errors, posting signed status webhooks. "
        "It knows every WhatsApp number and template in the database (POST /_sandbox/reload "
        "to re-read them)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument(
            "--webhook-url",
            default="http://127.0.0.1:8000/webhooks/whatsapp",
            help="Where status webhooks are posted; empty disables them.",
        )
        parser.add_argument(
            "--app-secret",
            default=None,
            help="Signs webhooks (X-Hub-Signature-256); default WHATSAPP_APP_SECRET.",
        )
        defaults = SandboxConfig()
        parser.add_argument("--latency-ms", type=float, default=defaults.latency_ms)
        parser.add_argument(
            "--ratio-slow",
            type=ratio,
            default=defaults.ratio_slow,
            help="Share of answers delayed by --slow-ms-min..--slow-ms-max more.",
        )
        parser.add_argument("--slow-ms-min", type=float, default=defaults.slow_ms_min)
        parser.add_argument("--slow-ms-max", type=float, default=defaults.slow_ms_max)
        parser.add_argument(
            "--ratio-429", type=ratio, default=defaults.ratio_429, help="Share of 130429."
        )
        parser.add_argument(
            "--ratio-5xx", type=ratio, default=defaults.ratio_5xx, help="Share of HTTP 500."
        )
        parser.add_argument(
            "--ratio-permanent",
            type=ratio,
            default=defaults.ratio_permanent,
            help="Share of --permanent-code.",
        )
        parser.add_argument("--permanent-code", type=int, default=defaults.permanent_code)
        parser.add_argument(
            "--ratio-async-failure",
            type=ratio,
            default=defaults.ratio_async_failure,
            help="Share of accepted messages whose webhook says failed (--async-failure-code) "
            f"instead of delivered; default {defaults.ratio_async_failure}.",
        )
        parser.add_argument("--async-failure-code", type=int, default=defaults.async_failure_code)
        parser.add_argument(
            "--read-ratio",
            type=ratio,
            default=defaults.read_ratio,
            help="Share of delivered messages that are read.",
        )
        parser.add_argument(
            "--limited-reporting",
            action=argparse.BooleanOptionalAction,
            default=defaults.limited_reporting,
            help="No read statuses for recipients in EEA/UK/JP/KR, as Meta reports none there "
            "(--no-limited-reporting: --read-ratio for them too).",
        )
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, host, port, app_secret, **options):
        config = SandboxConfig(app_secret=app_secret or settings.WHATSAPP_APP_SECRET)
        try:
            config.update({key: value for key, value in options.items() if hasattr(config, key)})
        except ValueError as error:
            raise CommandError(str(error)) from error
        registry = registry_from_database()
        sandbox = Sandbox(config, registry, reload=registry_from_database)
        self.stdout.write(
            f"Meta sandbox on http://{host}:{port} — {len(registry.numbers)} numbers, "
            f"{len(registry.templates)} templates; webhooks to "
            f"{config.webhook_url or '(disabled)'}"
        )
        self.stdout.flush()
        serve_forever(sandbox, host, port)
