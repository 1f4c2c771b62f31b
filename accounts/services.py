"""ORM writes of sign-in and sign-out: a login begins, a login ends, every token of some users stops holding."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.credentials import LOGIN_ID_CLAIM
from accounts.models import Login, TokenCutoff
from streaming.protocol import AuthCause


def login_start(user: Any) -> Login:
    """A sign-in: its id goes into the refresh token (and so into every token minted from it)."""
    return Login.objects.create(user=user)


def logout(refresh: RefreshToken) -> None:
    """End the login of this (verified) refresh token: blacklisted, and its sockets close at the next check."""
    with transaction.atomic():
        refresh.blacklist()
        login_id = refresh.get(LOGIN_ID_CLAIM)
        if login_id:
            Login.objects.filter(id=login_id, ended_at=None).update(
                ended_at=timezone.now(), ended_by=AuthCause.LOGGED_OUT.value
            )


def sign_out_everywhere(user_ids: Iterable[Any], cause: AuthCause) -> None:
    """Every token of these users issued until now stops holding, whatever login (or none) it came from.

    The cut-off is the rule (it also covers tokens minted outside sign-in); ending the logins and blacklisting
    the refresh tokens records it where SimpleJWT and an operator look.
    """
    ids = list(user_ids)
    now = timezone.now()
    with transaction.atomic():
        TokenCutoff.objects.bulk_create(
            [TokenCutoff(user_id=user_id, not_before=now, cause=cause.value) for user_id in ids],
            update_conflicts=True,
            unique_fields=["user"],
            update_fields=["not_before", "cause"],
        )
        Login.objects.filter(user_id__in=ids, ended_at=None).update(ended_at=now, ended_by=cause.value)
        outstanding = OutstandingToken.objects.filter(
            user_id__in=ids, expires_at__gt=now, blacklistedtoken__isnull=True
        ).values_list("id", flat=True)
        BlacklistedToken.objects.bulk_create(
            [BlacklistedToken(token_id=token_id) for token_id in outstanding], ignore_conflicts=True
        )


def user_id_of(user: Any) -> str:
    """The user's id as tokens spell it (SimpleJWT's USER_ID_FIELD, as a string)."""
    return str(getattr(user, api_settings.USER_ID_FIELD))
