"""HTTP routes: the page, the API, health, metrics, admin."""

from django.contrib import admin
from django.urls import include, path

from streaming import views
from streaming.api import scrape
from streaming.api import views as api_views

urlpatterns = [
    path("", views.index, name="index"),
    path("admin/", admin.site.urls),
    path("api/auth/", include("accounts.api.urls")),
    path("api/", include("streaming.api.urls")),
    path("healthz", api_views.healthz, name="healthz"),
    path("readyz", api_views.readyz, name="readyz"),
    path("metrics", scrape.metrics_view, name="metrics"),
]
