from django.urls import path

from .views import AudienceFilterView, LeadEventsView

urlpatterns = [
    path(
        "webhooks/campaigns/audience-filter",
        AudienceFilterView.as_view(),
        name="webhook-audience-filter",
    ),
    path("webhooks/lead-events", LeadEventsView.as_view(), name="webhook-lead-events"),
]
