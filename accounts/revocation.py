"""Which credentials still hold, read from the database: for one token (refresh, API) or every socket of a process.

Every process checks its own open sockets every couple of seconds (ProcessRegistry's database loop), in two
queries, whatever the number of sockets. That needs no message between processes, works alike with or without
Redis, and catches what sends no signal: `User.objects.filter(...).update(is_active=False)`, a password set
by any path, a login ended by another process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Protocol

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.utils import get_md5_hash_password

from accounts.credentials import AccountState, Credential, LoginState, verdict
from accounts.models import Login
from streaming.protocol import AuthCause

logger = logging.getLogger(__name__)


class Authenticated(Protocol):
    """A socket as the pass sees it (streaming.consumers.StreamConsumer)."""

    credential: Credential | None
    leaving: bool

    async def end_auth(self, cause: AuthCause) -> None: ...


def account_of(user: Any) -> AccountState:
    """A user loaded with select_related("token_cutoff") (accounts.users), as the rule reads it."""
    try:
        cutoff = user.token_cutoff
    except ObjectDoesNotExist:  # no cut-off was ever set for this user
        cutoff = None
    return AccountState(
        is_active=user.is_active,
        password_digest=get_md5_hash_password(user.password),
        not_before=cutoff.not_before.timestamp() if cutoff else None,
        not_before_cause=AuthCause(cutoff.cause) if cutoff else None,
    )


def accounts_by_id(user_ids: Iterable[str]) -> dict[str, AccountState]:
    """One query: the users' activity, password digest and cut-off, by user id (as the token's claim spells it)."""
    field = api_settings.USER_ID_FIELD
    rows = (
        get_user_model()
        .objects.filter(**{f"{field}__in": list(user_ids)})
        .values_list(field, "is_active", "password", "token_cutoff__not_before", "token_cutoff__cause")
    )
    return {
        str(user_id): AccountState(
            is_active=is_active,
            password_digest=get_md5_hash_password(password),
            not_before=not_before.timestamp() if not_before else None,
            not_before_cause=AuthCause(cause) if cause else None,
        )
        for user_id, is_active, password, not_before, cause in rows
    }


def logins_by_id(login_ids: Iterable[str]) -> dict[str, LoginState]:
    """One query: when each login began and how it ended, if it did."""
    ids = [login_id for login_id in login_ids if login_id]
    if not ids:
        return {}
    rows = Login.objects.filter(id__in=ids).values_list("id", "created_at", "ended_by")
    return {
        str(login_id): LoginState(created_at.timestamp(), AuthCause(ended_by) if ended_by else None)
        for login_id, created_at, ended_by in rows
    }


def check_credential(credential: Credential) -> AuthCause | None:
    """Why this token no longer holds, or None (two queries): for the refresh endpoint and the API."""
    account = accounts_by_id([credential.user_id]).get(credential.user_id)
    login = logins_by_id([credential.login_id]).get(credential.login_id) if credential.login_id else None
    return verdict(credential, account, login, check_password=api_settings.CHECK_REVOKE_TOKEN)


def _snapshot(user_ids: set[str], login_ids: set[str]) -> tuple[dict[str, AccountState], dict[str, LoginState]]:
    return accounts_by_id(user_ids), logins_by_id(login_ids)


async def close_revoked(connections: Iterable[Authenticated]) -> int:
    """One pass over this process's sockets: each whose credential no longer holds is closed with its cause."""
    held: list[tuple[Authenticated, Credential]] = []
    for socket in connections:
        if socket.credential is not None and not socket.leaving:
            held.append((socket, socket.credential))
    if not held:
        return 0
    user_ids = {credential.user_id for _, credential in held}
    login_ids = {credential.login_id for _, credential in held if credential.login_id}
    accounts, logins = await database_sync_to_async(_snapshot)(user_ids, login_ids)
    closed = 0
    for socket, credential in held:
        login = logins.get(credential.login_id) if credential.login_id else None
        cause = verdict(
            credential, accounts.get(credential.user_id), login, check_password=api_settings.CHECK_REVOKE_TOKEN
        )
        # An auth frame may have replaced the credential while the query ran: that one is checked next pass.
        if cause is not None and socket.credential is credential and not socket.leaving:
            await socket.end_auth(cause)
            closed += 1
    if closed:
        logger.info("revocation pass closed %d of %d sockets", closed, len(held))
    return closed
