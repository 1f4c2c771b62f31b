"""Socket users and logins loaded in batches: a reconnect storm becomes a few queries, not one per handshake."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.settings import api_settings

from accounts.credentials import LoginState
from accounts.revocation import logins_by_id
from streaming.passbatch import PassBatch
from streaming.perloop import PerLoop

# What a socket's token names: its user id and its login id (None for tokens minted outside sign-in).
Holder = tuple[str, str | None]
# The user (with its token cut-off) and the login, as the database holds them now; None where there is none.
Found = tuple[Any | None, LoginState | None]


def _users_by_id(user_ids: list[str]) -> dict[str, Any]:
    model = get_user_model()
    field = api_settings.USER_ID_FIELD
    users = model.objects.filter(**{f"{field}__in": user_ids}).select_related("token_cutoff")
    return {str(getattr(user, field)): user for user in users}


def found_for(holders: list[Holder]) -> list[Found]:
    """Two queries for any number of holders, each user and login read once however many sockets name it."""
    users = _users_by_id(sorted({user_id for user_id, _ in holders}))
    logins = logins_by_id({login_id for _, login_id in holders if login_id})
    return [(users.get(user_id), logins.get(login_id) if login_id else None) for user_id, login_id in holders]


async def _load(holders: list[Holder]) -> list[Found]:
    # One hop to the ORM thread for users and logins together: each hop waits for a pass of a busy loop.
    return await database_sync_to_async(found_for)(holders)


_loaders: PerLoop[PassBatch[Holder, Found]] = PerLoop(lambda: PassBatch(_load, "credential-loads"))


async def load_holder(user_id: str, login_id: str | None) -> Found:
    """The user and login a token names, from a query that began after this call (never an older read)."""
    return await _loaders.get()[0].submit((user_id, login_id))
