"""Token endpoints: SimpleJWT's views, with every attempt counted per username and per client address."""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.request import Request
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from accounts.throttles import AddressThrottle, UsernameThrottle
from creatornexus.openapi import ErrorSerializer

# Both token endpoints refuse rather than count attempts nowhere when Redis (the attempt counter) is down.
LIMITER_DOWN = OpenApiResponse(ErrorSerializer, description="The attempt counter is unreachable: try again shortly.")


def posted(request: Request, field: str) -> str | None:
    data = request.data
    value = data.get(field) if isinstance(data, Mapping) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


@extend_schema_view(
    post=extend_schema(
        summary="Sign in: an access and a refresh token",
        tags=["auth"],
        responses={
            200: TokenObtainPairSerializer,
            401: OpenApiResponse(ErrorSerializer, description="Wrong username or password, or an inactive user."),
            503: LIMITER_DOWN,
        },
    )
)
class ThrottledTokenObtainView(TokenObtainPairView):
    """POST username and password -> access and refresh tokens; 429 with Retry-After past the limits."""

    throttle_classes = (UsernameThrottle, AddressThrottle)
    throttle_scope = "login"

    def attempt_username(self, request: Request) -> str | None:
        username = posted(request, get_user_model().USERNAME_FIELD)
        return username.casefold() if username else None


@extend_schema_view(
    post=extend_schema(
        summary="A new access token for a refresh token",
        tags=["auth"],
        responses={
            200: TokenRefreshSerializer,
            401: OpenApiResponse(ErrorSerializer, description="The refresh token is malformed, expired or revoked."),
            503: LIMITER_DOWN,
        },
    )
)
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
