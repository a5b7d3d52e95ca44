from django.urls import path

from .api import (
    ResendDeliveryView,
    WebhookDeliveriesView,
    WebhookEndpointsView,
    WebhookEndpointView,
)

urlpatterns = [
    path("webhook-endpoints", WebhookEndpointsView.as_view(), name="api-webhook-endpoints"),
    path(
        "webhook-endpoints/<str:endpoint_id>",
        WebhookEndpointView.as_view(),
        name="api-webhook-endpoint",
    ),
    path(
        "webhook-endpoints/<str:endpoint_id>/deliveries",
        WebhookDeliveriesView.as_view(),
        name="api-webhook-deliveries",
    ),
    path(
        "webhook-endpoints/<str:endpoint_id>/deliveries/<str:delivery_id>/resend",
        ResendDeliveryView.as_view(),
        name="api-webhook-delivery-resend",
    ),
]
