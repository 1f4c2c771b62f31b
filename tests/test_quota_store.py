"""The quota commands of both stores behave alike: Redis (Lua on Redis's clock) and its in-memory twin."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from streaming import protocol
from streaming.store import StreamStore
from streaming.store.memory import MemoryStore
from streaming.store.quota import Lease, LeaseKind, utc_day
from tests.redisutil import flushed_redis

TTL = 5.0


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StreamStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    from streaming.store.redis import RedisStore

    redis_store = RedisStore(flushed_redis())
    yield redis_store
    await redis_store.aclose()


def lease(kind: LeaseKind = LeaseKind.STREAMS, user_id: int = 7) -> Lease:
    return Lease(kind, user_id, str(uuid.uuid4()))


async def test_claims_up_to_the_limit(store: StreamStore) -> None:
    """Five of five held, the sixth refused; the count says five."""
    held = [lease() for _ in range(6)]
    assert [await store.lease_claim(one, 5, TTL) for one in held] == [True] * 5 + [False]
    assert await store.lease_counts(7) == {LeaseKind.STREAMS: 5, LeaseKind.SOCKETS: 0}


async def test_concurrent_claims_for_the_last_place_admit_one(store: StreamStore) -> None:
    """Ten claims at once for one free place (as from ten processes): exactly one succeeds."""
    assert await store.lease_claim(lease(), 2, TTL)
    results = await asyncio.gather(*(store.lease_claim(lease(), 2, TTL) for _ in range(10)))
    assert sorted(results) == [False] * 9 + [True]


async def test_claims_of_one_call_count_in_order(store: StreamStore) -> None:
    """One call for three users' claims: each user's limit holds within the call, the first claims come first."""
    mine = [lease(LeaseKind.SOCKETS) for _ in range(3)]
    theirs = lease(LeaseKind.SOCKETS, user_id=8)
    claims = [(mine[0], 2), (theirs, 2), (mine[1], 2), (mine[2], 2), (mine[0], 2)]
    assert await store.lease_claim_many(claims, TTL) == [True, True, True, False, True]
    assert await store.lease_counts(7) == {LeaseKind.STREAMS: 0, LeaseKind.SOCKETS: 2}


async def test_kinds_and_users_are_counted_apart(store: StreamStore) -> None:
    """A user's sockets do not use up their streams, nor one user's leases another's."""
    assert await store.lease_claim(lease(LeaseKind.STREAMS), 1, TTL)
    assert await store.lease_claim(lease(LeaseKind.SOCKETS), 1, TTL)
    assert await store.lease_claim(lease(LeaseKind.STREAMS, user_id=8), 1, TTL)
    assert await store.lease_counts(7) == {LeaseKind.STREAMS: 1, LeaseKind.SOCKETS: 1}


async def test_release_frees_the_place(store: StreamStore) -> None:
    first, second = lease(), lease()
    assert await store.lease_claim(first, 1, TTL)
    assert not await store.lease_claim(second, 1, TTL)
    await store.lease_release(first)
    assert await store.lease_claim(second, 1, TTL)


async def test_an_unrenewed_lease_lapses_and_a_renewed_one_does_not(store: StreamStore) -> None:
    """Two leases of 0.3 s; only one is renewed: the other's place frees within its TTL, the renewed one holds."""
    dead, alive = lease(), lease()
    assert await store.lease_claim(dead, 0, 0.3) and await store.lease_claim(alive, 0, 0.3)
    async with asyncio.timeout(3):  # expiry has no event to wait on: ask until it has happened
        while (await store.lease_counts(7))[LeaseKind.STREAMS] == 2:
            await store.lease_renew([alive], 0.3)
            await asyncio.sleep(0.05)
    await store.lease_renew([alive], 0.3)
    assert (await store.lease_counts(7))[LeaseKind.STREAMS] == 1
    assert not await store.lease_claim(lease(), 1, TTL), "the renewed lease still counts"


async def test_renewal_writes_back_a_lost_lease(store: StreamStore) -> None:
    """A lease the store no longer holds (Redis restarted) counts again from the next renewal."""
    survivor = lease()
    await store.lease_renew([survivor], TTL)
    assert (await store.lease_counts(7))[LeaseKind.STREAMS] == 1
    assert not await store.lease_claim(lease(), 1, TTL)


async def test_words_of_the_day_are_the_words_flushed(store: StreamStore) -> None:
    """Each flush adds the new words of each session to its owner's day; the end adds the rest."""
    day = utc_day()
    mine, also_mine, theirs = [], [], []  # type: list[str], list[str], list[str]
    for session_id, owner, words in (("a", 7, mine), ("b", 7, also_mine), ("c", 8, theirs)):
        await store.open_session(f"{session_id}-{uuid.uuid4()}", owner, "proc", 100, words)
    mine += ["one ", "two "]
    also_mine += ["three "]
    theirs += ["four "]
    await store.flush()
    assert (await store.words_used(7, day), await store.words_used(8, day)) == (3, 1)
    mine += ["five "]
    await store.flush()
    await store.flush()  # nothing new: nothing counted twice
    assert await store.words_used(7, day) == 4
    assert await store.words_used(7, "2000-01-01") == 0


async def test_words_written_by_the_end_of_a_session_count(store: StreamStore) -> None:
    """close_session writes the last words and counts them: a cancelled stream counts what it wrote."""
    session_id, words = str(uuid.uuid4()), ["Hook: "]
    await store.open_session(session_id, 7, "proc", 150, words)
    words += ["brew ", "slowly. "]
    await store.close_session(session_id, protocol.stream_cancelled(session_id, 3), 60)
    assert await store.words_used(7, utc_day()) == 3


@pytest.mark.redis
async def test_redis_day_counter_expires() -> None:
    """The day's counter has a TTL (a little over a day): Redis never keeps every day of every user."""
    import redis.asyncio as aioredis

    from streaming.store.redis import WORDS_DAY_TTL_S, RedisStore, words_day_key

    url = flushed_redis()
    store = RedisStore(url)
    words: list[str] = []
    await store.open_session(str(uuid.uuid4()), 7, "proc", 10, words)
    words.append("one ")
    await store.flush()
    client: Any = aioredis.Redis.from_url(url)
    try:
        ttl = await client.ttl(words_day_key(7, utc_day()))
    finally:
        await client.aclose()
        await store.aclose()
    assert 86400 < ttl <= WORDS_DAY_TTL_S
