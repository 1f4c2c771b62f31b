"""Socket users and logins loaded in batches: a reconnect storm becomes a few queries, not one per handshake."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.settings import api_settings

from accounts.revocation import logins_by_id
from streaming.perloop import PerLoop


def _users_by_id(user_ids: list[str]) -> dict[str, Any]:
    model = get_user_model()
    field = api_settings.USER_ID_FIELD
    users = model.objects.filter(**{f"{field}__in": user_ids}).select_related("token_cutoff")
    return {str(getattr(user, field)): user for user in users}


class BatchLoader:
    """Coalesces lookups: while one query runs, the next ones wait and go together in the following query."""

    def __init__(self, fetch: Callable[[list[str]], dict[str, Any]]) -> None:
        self._fetch = fetch
        self._waiting: dict[str, list[asyncio.Future[Any]]] = {}
        self._drain: asyncio.Task[None] | None = None

    async def load(self, key: Any) -> Any | None:
        """The row with this id, or None."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(str(key), []).append(future)
        if self._drain is None or self._drain.done():
            self._drain = asyncio.create_task(self._drain_all(), name="batch-loader")
        return await future

    async def _drain_all(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, {}
            try:
                rows = await database_sync_to_async(self._fetch)(list(batch))
            except Exception as exc:
                for futures in batch.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            for key, futures in batch.items():
                for future in futures:
                    if not future.done():
                        future.set_result(rows.get(key))


_user_loaders: PerLoop[BatchLoader] = PerLoop(lambda: BatchLoader(_users_by_id))
_login_loaders: PerLoop[BatchLoader] = PerLoop(lambda: BatchLoader(logins_by_id))


def user_loader() -> BatchLoader:
    """This event loop's loader of users, with their token cut-off (futures belong to one loop)."""
    return _user_loaders.get()[0]


def login_loader() -> BatchLoader:
    """This event loop's loader of logins (accounts.credentials.LoginState)."""
    return _login_loaders.get()[0]
