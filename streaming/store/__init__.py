"""The stream store: the truth about every session's words, state and owner, shared by all processes.

Redis when REDIS_URL is set, an in-memory twin with the same behaviour within one process otherwise.
"""

from __future__ import annotations

import asyncio

from django.conf import settings

from streaming.store.base import SessionState, StreamStore

__all__ = ["SessionState", "StreamStore", "get_store"]

_stores: dict[asyncio.AbstractEventLoop, StreamStore] = {}


def get_store() -> StreamStore:
    """One store per event loop (a Redis client is bound to the loop that created it)."""
    loop = asyncio.get_running_loop()
    store = _stores.get(loop)
    if store is None:
        for stale in [known for known in _stores if known.is_closed()]:
            del _stores[stale]
        if settings.REDIS_URL:
            from streaming.store.redis import RedisStore

            store = RedisStore(settings.REDIS_URL)
        else:
            from streaming.store.memory import MemoryStore

            store = MemoryStore()
        _stores[loop] = store
    return store
