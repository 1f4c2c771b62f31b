"""Token endpoints: SimpleJWT's views, with every attempt counted per username and per client address."""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib.auth import get_user_model
from rest_framework.request import Request
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from accounts.throttles import AddressThrottle, UsernameThrottle


def posted(request: Request, field: str) -> str | None:
    data = request.data
    value = data.get(field) if isinstance(data, Mapping) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


class ThrottledTokenObtainView(TokenObtainPairView):
    """POST username and password -> access and refresh tokens; 429 with Retry-After past the limits."""

    throttle_classes = (UsernameThrottle, AddressThrottle)
    throttle_scope = "login"

    def attempt_username(self, request: Request) -> str | None:
        username = posted(request, get_user_model().USERNAME_FIELD)
        return username.casefold() if username else None


class ThrottledTokenRefreshView(TokenRefreshView):
    """POST a refresh token -> a new access token; 429 with Retry-After past the limits."""

    throttle_classes = (UsernameThrottle, AddressThrottle)
    throttle_scope = "refresh"

    def attempt_username(self, request: Request) -> str | None:
        """The user of a genuine refresh token: a forged claim must not use up someone else's attempts."""
        raw = posted(request, "refresh")
        try:
            return str(RefreshToken(raw)[api_settings.USER_ID_CLAIM]) if raw else None  # type: ignore[arg-type]
        except (TokenError, KeyError):
            return None
