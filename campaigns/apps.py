from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "campaigns"

    def ready(self):
        from audiences.segments import register_reader

        from .segment_use import READER

        register_reader(READER)
