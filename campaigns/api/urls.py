from django.urls import path

from . import delivery_settings, views

urlpatterns = [
    path(
        "organization/delivery-settings",
        delivery_settings.DeliverySettingsView.as_view(),
        name="api-delivery-settings",
    ),
    path("campaigns", views.CampaignsView.as_view(), name="api-campaigns"),
    path("campaigns/query", views.CampaignQueryView.as_view(), name="api-campaigns-query"),
    path("campaigns/<str:campaign_id>", views.CampaignView.as_view(), name="api-campaign"),
    path(
        "campaigns/<str:campaign_id>/start",
        views.CampaignStartView.as_view(),
        name="api-campaign-start",
    ),
    path(
        "campaigns/<str:campaign_id>/stop",
        views.CampaignStopView.as_view(),
        name="api-campaign-stop",
    ),
    path(
        "campaigns/<str:campaign_id>/duplicate",
        views.CampaignDuplicateView.as_view(),
        name="api-campaign-duplicate",
    ),
    path(
        "campaigns/<str:campaign_id>/sends/<str:send_id>/test",
        views.TestSendView.as_view(),
        name="api-send-test",
    ),
    path(
        "campaigns/<str:campaign_id>/sends/<str:send_id>/test/<str:test_send_id>",
        views.TestSendStateView.as_view(),
        name="api-send-test-state",
    ),
    path(
        "campaigns/<str:campaign_id>/sends/<str:send_id>/retry",
        views.SendRetryView.as_view(),
        name="api-send-retry",
    ),
    path(
        "campaigns/<str:campaign_id>/sends/<str:send_id>/preview",
        views.SendPreviewView.as_view(),
        name="api-send-preview",
    ),
]
