from django.urls import path

from .views import SegmentsView

urlpatterns = [path("segments", SegmentsView.as_view(), name="api-segments")]
