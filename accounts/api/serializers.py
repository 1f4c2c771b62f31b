"""Token serializers: every sign-in is a login whose id its tokens carry; a refresh checks that the login holds."""

from __future__ import annotations

from typing import Any

from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken, Token

from accounts import services
from accounts.credentials import LOGIN_ID_CLAIM, Credential
from accounts.revocation import check_credential
from streaming.protocol import AUTH_CLOSES, AuthCause


def refused(cause: AuthCause) -> AuthenticationFailed:
    """401 {"detail", "code"} (SimpleJWT's shape): the words a socket's close reason uses, the cause as the code."""
    return AuthenticationFailed(AUTH_CLOSES[cause][1], code=cause.value)


def credential_of(token: Token) -> Credential:
    return Credential.of(token.payload, api_settings.USER_ID_CLAIM, api_settings.REVOKE_TOKEN_CLAIM)


class LoginTokenObtainPairSerializer(TokenObtainPairSerializer):
    """Username and password -> a refresh and an access token of a new login."""

    @classmethod
    def get_token(cls, user: Any) -> Token:
        token = super().get_token(user)
        token[LOGIN_ID_CLAIM] = str(services.login_start(user).id)
        return token


class CheckedTokenRefreshSerializer(TokenRefreshSerializer):
    """SimpleJWT's refresh (blacklist, rotation), refused first when the login or the account no longer holds."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        refresh = RefreshToken(attrs["refresh"])
        cause = check_credential(credential_of(refresh))
        if cause is not None:
            raise refused(cause)
        return super().validate(attrs)
