from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """The project's top: settings, URLs, the Celery app and the commands and views that read
    several apps at once. An app only so Django finds its management commands; no models."""

    name = "config"
    verbose_name = "Project"
