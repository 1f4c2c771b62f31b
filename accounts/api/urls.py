"""Token endpoints: SimpleJWT's views behind the brute-force limits (accounts/throttles.py)."""

from django.urls import path

from accounts.api.views import ThrottledTokenObtainView, ThrottledTokenRefreshView

urlpatterns = [
    path("token/", ThrottledTokenObtainView.as_view(), name="token_obtain_pair"),
    path("token/refresh/", ThrottledTokenRefreshView.as_view(), name="token_refresh"),
]
