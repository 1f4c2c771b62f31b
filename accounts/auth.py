"""Authenticating plain (async) Django views with the same checks DRF uses (accounts.api.authentication)."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.http import HttpRequest
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from accounts.api.authentication import CheckedJWTAuthentication


def _user_for_header(header: str) -> Any | None:
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return None
    auth = CheckedJWTAuthentication()
    try:
        return auth.get_user(auth.get_validated_token(raw.strip().encode()))
    except (TokenError, InvalidToken, AuthenticationFailed):
        return None


async def request_user(request: HttpRequest) -> Any | None:
    """The user of a valid `Authorization: Bearer <access>` header, else None."""
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    return await database_sync_to_async(_user_for_header)(header)
