"""Socket users loaded in batches: a reconnect storm becomes a few queries, not one per handshake."""

from __future__ import annotations

import asyncio
from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.settings import api_settings

from streaming.perloop import PerLoop


def _users_by_id(user_ids: list[Any]) -> dict[str, Any]:
    model = get_user_model()
    field = api_settings.USER_ID_FIELD
    return {str(getattr(user, field)): user for user in model.objects.filter(**{f"{field}__in": user_ids})}


class UserLoader:
    """Coalesces lookups: while one query runs, the next ones wait and go together in the following query."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[asyncio.Future[Any]]] = {}
        self._drain: asyncio.Task[None] | None = None

    async def load(self, user_id: Any) -> Any | None:
        """The user with this id (SimpleJWT's USER_ID_FIELD), or None."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(str(user_id), []).append(future)
        if self._drain is None or self._drain.done():
            self._drain = asyncio.create_task(self._drain_all(), name="user-loader")
        return await future

    async def _drain_all(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, {}
            try:
                users = await database_sync_to_async(_users_by_id)(list(batch))
            except Exception as exc:
                for futures in batch.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            for user_id, futures in batch.items():
                for future in futures:
                    if not future.done():
                        future.set_result(users.get(user_id))


_loaders: PerLoop[UserLoader] = PerLoop(UserLoader)


def user_loader() -> UserLoader:
    """This event loop's loader (futures belong to one loop)."""
    return _loaders.get()[0]
