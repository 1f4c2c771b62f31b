"""The Redis store's connections: a burst of commands shares a bounded pool, plain or through Sentinel; calls that
come together (word counts, leases) share one round trip."""

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


def opened_by(store: RedisStore) -> int:
    pool = store._redis.connection_pool
    return len(pool._available_connections) + len(pool._in_use_connections)  # type: ignore[attr-defined]


async def burst_through(store: RedisStore) -> int:
    """BURST session reads at once (a pipeline each); how many connections the store's pool opened for them."""
    try:
        read = await asyncio.gather(*(store.read(f"no-such-session-{i}", 0) for i in range(BURST)))
        opened = opened_by(store)
    finally:
        await store.aclose()
    assert read == [None] * BURST
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


async def test_word_counts_asked_together_are_one_round_trip() -> None:
    store = RedisStore(flushed_redis())
    try:
        used = await asyncio.gather(*(store.words_used(user_id, "2026-01-01") for user_id in range(BURST)))
        assert used == [0] * BURST
        assert opened_by(store) == 1
    finally:
        await store.aclose()
