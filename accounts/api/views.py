"""Token endpoints: SimpleJWT's views, with every attempt counted per username and per client address; logout."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from accounts import services
from accounts.api.serializers import CheckedTokenRefreshSerializer, LoginTokenObtainPairSerializer
from accounts.throttles import AddressThrottle, UsernameThrottle
from creatornexus.openapi import ErrorSerializer
from streaming.protocol import AuthCause

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
    """POST username and password -> access and refresh tokens of a new login; 429 with Retry-After past the limits."""

    serializer_class = LoginTokenObtainPairSerializer
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
    """POST a refresh token -> a new access token and the next refresh token (the one sent is blacklisted); 429 with
    Retry-After past the limits; 401 once the login or the account no longer holds."""

    serializer_class = CheckedTokenRefreshSerializer
    throttle_classes = (UsernameThrottle, AddressThrottle)
    throttle_scope = "refresh"

    def attempt_username(self, request: Request) -> str | None:
        """The user of a genuine refresh token: a forged claim must not use up someone else's attempts."""
        raw = posted(request, "refresh")
        try:
            return str(RefreshToken(raw)[api_settings.USER_ID_CLAIM]) if raw else None  # type: ignore[arg-type]
        except (TokenError, KeyError):
            return None


class LogoutSerializer(serializers.Serializer[Any]):
    refresh = serializers.CharField(help_text="The refresh token of the login to end.")


@extend_schema(
    request=LogoutSerializer,
    responses={204: OpenApiResponse(description="The login ended; its sockets close with 4401 within seconds.")},
    summary="Sign this login out (its refresh token is blacklisted, its sockets close)",
    tags=["auth"],
)
class LogoutView(APIView):
    """POST {"refresh"} with the access token: that login ends. Its refresh token is blacklisted, no token of it
    authenticates again, and its sockets on every process close with 4401 within seconds; other logins go on."""

    def post(self, request: Request) -> Response:
        raw = posted(request, "refresh")
        if raw is None:
            raise ValidationError({"refresh": ["This field is required."]})
        try:
            refresh = RefreshToken(raw)  # type: ignore[arg-type]  # SimpleJWT accepts str at runtime
        except TokenError as exc:
            raise ValidationError({"refresh": [str(exc)]}) from exc
        if str(refresh.get(api_settings.USER_ID_CLAIM)) != services.user_id_of(request.user):
            raise ValidationError({"refresh": ["This refresh token belongs to another user."]})
        services.logout(refresh)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(
    request=None,
    responses={204: OpenApiResponse(description="Every login of the user ended; all their sockets close.")},
    summary="Sign every login of this user out, on every device",
    tags=["auth"],
)
class LogoutAllView(APIView):
    """POST with the access token: every login of the user ends, on every device, as /logout/ ends one."""

    def post(self, request: Request) -> Response:
        services.sign_out_everywhere([request.user.pk], AuthCause.SIGNED_OUT_EVERYWHERE)
        return Response(status=status.HTTP_204_NO_CONTENT)
