"""The stream store: the truth about every session's words, state and owner, shared by all processes.

Redis when REDIS_URL is set, an in-memory twin with the same behaviour within one process otherwise.
"""

from __future__ import annotations

from django.conf import settings

from streaming.perloop import PerLoop
from streaming.store.base import SessionState, StreamStore

__all__ = ["SessionState", "StreamStore", "get_store"]


def _make_store() -> StreamStore:
    if settings.REDIS_URL:
        from streaming.store.redis import RedisStore

        return RedisStore(settings.REDIS_URL)
    from streaming.store.memory import MemoryStore

    return MemoryStore()


_stores: PerLoop[StreamStore] = PerLoop(_make_store)


def get_store() -> StreamStore:
    """One store per event loop (a Redis client is bound to the loop that created it)."""
    return _stores.get()[0]
