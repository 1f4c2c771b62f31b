"""API authentication: SimpleJWT's checks, then the same revocation rule sockets and refreshes follow."""

from __future__ import annotations

from typing import Any

from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.tokens import Token

from accounts.api.serializers import credential_of, refused
from accounts.revocation import check_credential


class CheckedJWTAuthentication(JWTAuthentication):
    """Signature, expiry, active user and password (SimpleJWT), then: the login was not signed out, no cut-off."""

    def get_user(self, validated_token: Token) -> Any:
        user = super().get_user(validated_token)
        cause = check_credential(credential_of(validated_token))
        if cause is not None:
            raise refused(cause)
        return user
