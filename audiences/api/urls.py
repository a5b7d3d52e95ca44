from django.urls import path

from . import views

urlpatterns = [
    path("segments", views.SegmentsView.as_view(), name="api-segments"),
    path("segments/query", views.SegmentsQueryView.as_view(), name="api-segments-query"),
    path("segments/<str:segment_id>", views.SegmentView.as_view(), name="api-segment"),
    path(
        "segments/<str:segment_id>/targets",
        views.SegmentTargetsView.as_view(),
        name="api-segment-targets",
    ),
    path(
        "segments/<str:segment_id>/targets/remove",
        views.SegmentTargetsRemoveView.as_view(),
        name="api-segment-targets-remove",
    ),
    path(
        "segments/<str:segment_id>/targets/query",
        views.SegmentTargetsQueryView.as_view(),
        name="api-segment-targets-query",
    ),
    path(
        "segments/<str:segment_id>/targets/<str:target_id>",
        views.SegmentTargetView.as_view(),
        name="api-segment-target",
    ),
]
