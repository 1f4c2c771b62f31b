"""URLs of the streaming API."""

from django.urls import path

from streaming.api import views

urlpatterns = [
    path("scripts/", views.ScriptList.as_view(), name="script-list"),
    path("scripts/<int:pk>/", views.ScriptDetail.as_view(), name="script-detail"),
    path("websocket/stats", views.websocket_stats, name="websocket-stats"),
    path("usage/", views.usage, name="usage"),
]
