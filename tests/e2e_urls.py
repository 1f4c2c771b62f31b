"""URLconf of the server processes the tests start: the product's routes plus test-only ones."""

from django.urls import path

from creatornexus.urls import urlpatterns as product_urlpatterns
from tests import e2e_views

urlpatterns = [
    *product_urlpatterns,
    # Tests break connections on purpose, make the server commit its batched rows and count its garbage.
    path("test/drop-sockets", e2e_views.drop_sockets, name="test-drop-sockets"),
    path("test/garbage", e2e_views.garbage, name="test-garbage"),
    path("test/settle", e2e_views.settle, name="test-settle"),
]
