from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "webhooks"

    def ready(self):
        from campaigns.events import send_paused_signal, status_changed_signal

        from . import schema  # noqa: F401  (registers the OpenAPI auth extensions)
        from .outbound import events

        status_changed_signal.connect(events.status_changed, dispatch_uid="webhooks.outbound")
        send_paused_signal.connect(events.send_paused, dispatch_uid="webhooks.outbound.paused")
