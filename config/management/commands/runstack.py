import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from config.management.demo import seed_demo
from config.management.supervisor import Child, ChildExited, NotReady, Supervisor
from messaging.management.commands.meta_sandbox import ratio
from messaging.sandbox.state import SandboxConfig


class Command(BaseCommand):
    help = (
        "Run the whole product on this machine: migrate, seed the demo organization, then "
        "supervise the web server, a Celery worker, Celery beat and the Meta sandbox (a child "
        "that dies is restarted) until Ctrl-C (or SIGTERM) stops them all."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="Web server port.")
        parser.add_argument(
            "--sandbox-port", type=int, default=8765, help="Meta Graph API sandbox port."
        )
        parser.add_argument(
            "--no-seed", action="store_true", help="Do not create or refresh the demo data."
        )
        parser.add_argument(
            "--sandbox-failure-ratio",
            type=ratio,
            default=SandboxConfig().ratio_async_failure,
            help="Share of accepted messages the Meta sandbox then reports failed (131026); "
            "default %(default)s, 0 for a rosy run.",
        )

    def handle(self, *args, port, sandbox_port, no_seed, sandbox_failure_ratio, **options):
        base_url = f"http://127.0.0.1:{port}"
        log_dir = settings.VAR_DIR / "logs"
        for folder in (settings.VAR_DIR, log_dir, settings.MEDIA_ROOT, *_broker_folders()):
            folder.mkdir(parents=True, exist_ok=True)

        self.stdout.write("Migrating the database…")
        call_command("migrate", interactive=False, verbosity=0)
        seed = None if no_seed else seed_demo()
        call_command("collectstatic", interactive=False, verbosity=0)

        state_file = settings.VAR_DIR / "supervisor.json"
        env = {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            # The demo's webhook receivers run on this machine too.
            "OUTBOUND_WEBHOOK_ALLOW_LOOPBACK": "1",
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "WHATSAPP_GRAPH_URL": f"http://127.0.0.1:{sandbox_port}",
            "SETTER_SUPERVISOR_STATE": str(state_file),
        }
        supervisor = Supervisor(
            _children(port, sandbox_port, base_url, sandbox_failure_ratio),
            env=env,
            cwd=settings.BASE_DIR,
            out=sys.stdout,
            log_dir=log_dir,
            state_file=state_file,
        )

        def announce():
            self.stdout.write(_banner(base_url, sandbox_port, log_dir, seed))
            self.stdout.flush()

        try:
            supervisor.run(ready=lambda: _answers(f"{base_url}/admin/login/"), on_ready=announce)
        except (ChildExited, NotReady) as error:
            raise CommandError(f"{error}; stopped the stack. Logs: {log_dir}") from error
        self.stdout.write("Stopped.")


def _children(
    port: int, sandbox_port: int, base_url: str, sandbox_failure_ratio: float
) -> list[Child]:
    python = sys.executable
    manage = str(settings.BASE_DIR / "manage.py")
    return [
        Child(
            "web",
            [
                python, "-m", "gunicorn", "config.wsgi",
                "--bind", f"127.0.0.1:{port}",
                "--workers", "2",
                "--graceful-timeout", "5",
                "--access-logfile", "-",
            ],
        ),
        Child(
            "worker",
            [
                python, "-m", "celery", "-A", "config", "worker",
                "--pool", "threads", "--concurrency", "4",
                "--hostname", "worker@%h",
                "--loglevel", "INFO",
            ],
        ),
        Child(
            "beat",
            [
                python, "-m", "celery", "-A", "config", "beat",
                "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
                "--loglevel", "INFO",
            ],
        ),
        Child(
            "sandbox",
            [
                python, manage, "meta_sandbox",
                "--port", str(sandbox_port),
                "--webhook-url", f"{base_url}/webhooks/whatsapp",
                "--ratio-async-failure", str(sandbox_failure_ratio),
            ],
        ),
    ]  # fmt: skip


def _broker_folders() -> list[Path]:
    """The file-system broker's folders (embedded shape); kombu expects them to exist."""
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    return [
        Path(options[key])
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")
        if key in options
    ]


def _answers(url: str) -> bool:
    try:
        # Generous: the first request imports the whole project in a cold worker.
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _banner(base_url, sandbox_port, log_dir, seed) -> str:
    if seed is None:
        login = "your own user (python manage.py createsuperuser)"
        secrets = []
    else:
        login = seed.login
        secrets = [
            f"  API key         {seed.api_key}",
            f"  Signing secret  {seed.signing_secret}",
            f"  Organization    {seed.organization.name} "
            f"(inbound auth: {seed.organization.inbound_auth_mode})",
        ]
    rule = "=" * 72
    return "\n".join(
        [
            rule,
            "  Setter Campaigns is running",
            f"  Admin           {base_url}/admin/",
            f"  Log in as       {login}",
            *secrets,
            f"  API docs        {base_url}/api/docs/",
            f"  Meta sandbox    http://127.0.0.1:{sandbox_port}",
            f"  Logs            this terminal, and {log_dir}/<web|worker|beat|sandbox>.log",
            f"  Restarts        a child that dies is restarted; counts in {base_url}/readyz",
            "  Stop            Ctrl-C",
            rule,
        ]
    )
