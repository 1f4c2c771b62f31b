"""The Redis store's connections: a burst of commands shares a bounded pool, plain or through Sentinel."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streaming.store import redis as redis_store
from streaming.store.redis import RedisStore
from tests.redisutil import SENTINEL_MASTER, flushed_redis

pytestmark = pytest.mark.redis

BURST = 200
POOL = 4


async def burst_through(store: RedisStore) -> int:
    """BURST reads at once; how many connections the store's pool opened for them."""
    try:
        used = await asyncio.gather(*(store.words_used(user_id, "2026-01-01") for user_id in range(BURST)))
        pool = store._redis.connection_pool
        opened = len(pool._available_connections) + len(pool._in_use_connections)  # type: ignore[attr-defined]
    finally:
        await store.aclose()
    assert used == [0] * BURST
    return opened


async def test_a_burst_of_commands_waits_for_the_pools_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_store, "POOL_SIZE", POOL)
    assert await burst_through(RedisStore(flushed_redis())) == POOL


async def test_the_sentinel_masters_pool_is_bounded_too(
    monkeypatch: pytest.MonkeyPatch, settings: Any, sentinel: list[tuple[str, int]]
) -> None:
    url = flushed_redis()
    monkeypatch.setattr(redis_store, "POOL_SIZE", POOL)
    settings.REDIS_SENTINELS = sentinel
    settings.REDIS_SENTINEL_MASTER = SENTINEL_MASTER
    assert await burst_through(RedisStore(url.replace("127.0.0.1:6379", "sentinel-named-master"))) == POOL
