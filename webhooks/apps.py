from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "webhooks"

    def ready(self):
        from campaigns.events import status_changed_signal

        from . import schema  # noqa: F401  (registers the OpenAPI auth extensions)
        from .outbound import events

        status_changed_signal.connect(events.status_changed, dispatch_uid="webhooks.outbound")
