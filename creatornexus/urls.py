"""HTTP routes: the page, the API, health, admin."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from streaming import views
from streaming.api import views as api_views

urlpatterns = [
    path("", views.index, name="index"),
    path("admin/", admin.site.urls),
    path("api/auth/", include("accounts.api.urls")),
    path("api/", include("streaming.api.urls")),
    path("healthz", api_views.healthz, name="healthz"),
    path("readyz", api_views.readyz, name="readyz"),
]

if settings.STREAMING["TEST_ROUTES"]:
    # Tests break connections on purpose and settle writes; never on unless STREAMING_TEST_ROUTES=1.
    from streaming import testing_views

    urlpatterns.append(path("test/drop-sockets", testing_views.drop_sockets, name="test-drop-sockets"))
    urlpatterns.append(path("test/settle", testing_views.settle, name="test-settle"))
