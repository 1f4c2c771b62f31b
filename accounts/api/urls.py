"""Token endpoints (SimpleJWT's views behind the brute-force limits of accounts/throttles.py) and logout."""

from django.urls import path

from accounts.api.views import LogoutAllView, LogoutView, ThrottledTokenObtainView, ThrottledTokenRefreshView

urlpatterns = [
    path("token/", ThrottledTokenObtainView.as_view(), name="token_obtain_pair"),
    path("token/refresh/", ThrottledTokenRefreshView.as_view(), name="token_refresh"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("logout/all/", LogoutAllView.as_view(), name="logout_all"),
]
