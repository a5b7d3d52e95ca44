from django.apps import AppConfig


class SetterConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "setter"
    verbose_name = "Organizations"

    def ready(self):
        from . import lookups  # noqa: F401  (registers the `__any` lookup)
