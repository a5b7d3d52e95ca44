from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.ops.health import healthz, readyz
from config.ops.metrics import metrics
from webhooks.whatsapp.views import whatsapp_webhook

admin.site.site_header = "Setter Campaigns"
admin.site.site_title = "Setter Campaigns"
admin.site.index_title = "Campaigns, audiences and WhatsApp numbers"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("webhooks/whatsapp", whatsapp_webhook, name="whatsapp-webhook"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("api/v1/", include("webhooks.urls")),
    path("api/v1/", include("audiences.api.urls")),
    path("api/v1/", include("campaigns.api.urls")),
    path("api/v1/", include("webhooks.outbound.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
