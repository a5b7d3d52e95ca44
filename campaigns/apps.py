from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "campaigns"

    def ready(self):
        from audiences.segments import register_reader
        from messaging.signals import quality_degraded

        from .quality_guard import on_quality_degraded
        from .segment_use import READER

        register_reader(READER)
        quality_degraded.connect(on_quality_degraded, dispatch_uid="campaigns.quality_guard")
