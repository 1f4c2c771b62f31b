"""Lease rules without I/O (LeaseTable on a fake clock), the UTC day, and a process's Leases holder."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from streaming.quotas import Leases
from streaming.store.memory import MemoryStore
from streaming.store.quota import Lease, LeaseKind, LeaseTable, next_utc_midnight, utc_day

TTL = 6.0


def test_claims_up_to_the_limit_then_refuses() -> None:
    """Five claims of five hold; the sixth is refused and changes nothing."""
    table = LeaseTable()
    assert [table.claim(f"s{n}", 5, now=0, ttl_s=TTL) for n in range(6)] == [True] * 5 + [False]
    assert table.live(0) == 5 and "s5" not in table.expiries


def test_claiming_a_held_lease_again_never_counts_twice() -> None:
    """At the limit, the holder of a lease may claim it again (a retry): held, still five."""
    table = LeaseTable()
    for n in range(5):
        table.claim(f"s{n}", 5, now=0, ttl_s=TTL)
    assert table.claim("s0", 5, now=1, ttl_s=TTL)
    assert table.live(1) == 5 and table.expiries["s0"] == 1 + TTL


def test_release_frees_a_place_at_once() -> None:
    table = LeaseTable()
    table.claim("a", 1, now=0, ttl_s=TTL)
    assert not table.claim("b", 1, now=0, ttl_s=TTL)
    table.release("a")
    assert table.claim("b", 1, now=0, ttl_s=TTL)


def test_a_lease_nobody_renews_lapses_at_its_expiry() -> None:
    """A killed process renews nothing: its lease counts until its expiry, not one moment after."""
    table = LeaseTable()
    table.claim("dead", 1, now=0, ttl_s=TTL)
    assert not table.claim("new", 1, now=TTL - 0.001, ttl_s=TTL)
    assert table.claim("new", 1, now=TTL, ttl_s=TTL)
    assert set(table.expiries) == {"new"}


def test_renewal_keeps_a_lease_alive_past_its_first_expiry() -> None:
    """Renewed every third of the TTL, a living process's lease never lapses."""
    table = LeaseTable()
    table.claim("alive", 1, now=0, ttl_s=TTL)
    for tick in range(1, 10):
        table.renew("alive", now=tick * TTL / 3, ttl_s=TTL)
    assert table.live(10 * TTL / 3) == 1
    assert not table.claim("other", 1, now=10 * TTL / 3, ttl_s=TTL)


def test_renewal_writes_back_a_lease_the_store_lost() -> None:
    """After a store restart the owner still runs the stream: renewing counts it again."""
    table = LeaseTable()
    table.renew("survivor", now=0, ttl_s=TTL)
    assert table.live(0) == 1


def test_zero_means_no_limit() -> None:
    table = LeaseTable()
    assert all(table.claim(f"s{n}", 0, now=0, ttl_s=TTL) for n in range(100))
    assert table.live(0) == 100


@pytest.mark.parametrize(
    ("now", "day", "midnight"),
    [
        (datetime(2026, 11, 26, 0, 0, tzinfo=UTC), "2026-11-26", datetime(2026, 11, 27, tzinfo=UTC)),
        (datetime(2026, 11, 26, 23, 59, 59, tzinfo=UTC), "2026-11-26", datetime(2026, 11, 27, tzinfo=UTC)),
        (datetime(2026, 12, 31, 12, 0, tzinfo=UTC), "2026-12-31", datetime(2027, 1, 1, tzinfo=UTC)),
        (datetime.fromisoformat("2026-11-26T23:30:00-02:00"), "2026-11-27", datetime(2026, 11, 28, tzinfo=UTC)),
    ],
)
def test_the_day_is_utc(now: datetime, day: str, midnight: datetime) -> None:
    """Words count against the UTC day, whatever the clock's zone; the budget resets at the next UTC midnight."""
    assert utc_day(now) == day
    assert next_utc_midnight(now) == midnight


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def alice_streams(n: int) -> list[Lease]:
    return [Lease(LeaseKind.STREAMS, 7, f"s{i}") for i in range(n)]


@pytest.fixture
def quota_settings(settings: Any) -> None:
    settings.STREAMING = {**settings.STREAMING, "MAX_STREAMS_PER_USER": 2, "QUOTA_LEASE_TTL_S": TTL}


async def test_leases_renew_what_the_registry_holds(quota_settings: None) -> None:
    """renew() extends the leases held() names, and no other: one that ended unreleased lapses."""
    clock = FakeClock()
    store = MemoryStore(clock)
    held = alice_streams(2)
    leases = Leases(store, lambda: held)
    assert [await leases.claim(lease) for lease in held] == [True, True]
    held = held[:1]  # s1 ended without its release (a crash in between): nobody renews it
    clock.now = TTL - 1
    await leases.renew()
    clock.now = TTL + 1
    assert (await store.lease_counts(7))[LeaseKind.STREAMS] == 1
    assert await leases.claim(Lease(LeaseKind.STREAMS, 7, "s2"))


async def test_a_claim_waits_for_a_release_in_flight(quota_settings: None) -> None:
    """A stream that just ended is released in the background; the next claim of this process waits for it."""
    store = MemoryStore()
    leases = Leases(store, list)
    first, second, third = alice_streams(3)
    assert await leases.claim(first) and await leases.claim(second)
    leases.release_soon(first)  # from the generation's done callback: no await there
    assert await leases.claim(third)


async def test_a_release_waits_for_a_renewal_in_flight(quota_settings: None) -> None:
    """A renewal that read a lease before its release cannot write it back after the release."""
    store = MemoryStore()
    lease = alice_streams(1)[0]
    renewing = asyncio.Event()
    go_on = asyncio.Event()
    renew = store.lease_renew

    async def slow_renew(held: list[Lease], ttl_s: float) -> None:
        renewing.set()
        await go_on.wait()
        await renew(held, ttl_s)

    store.lease_renew = slow_renew  # type: ignore[method-assign]
    leases = Leases(store, lambda: [lease])
    await leases.claim(lease)
    renewal = asyncio.create_task(leases.renew())
    await renewing.wait()
    release = asyncio.create_task(leases.release(lease))
    await asyncio.sleep(0)
    go_on.set()
    await asyncio.gather(renewal, release)
    assert (await store.lease_counts(7))[LeaseKind.STREAMS] == 0


class DownStore(MemoryStore):
    """A store that cannot be reached."""

    async def lease_claim_many(self, claims: list[tuple[Lease, int]], ttl_s: float) -> list[bool]:
        raise ConnectionError("store down")

    async def words_used(self, user_id: int, day: str) -> int:
        raise ConnectionError("store down")


async def test_an_unreachable_store_does_not_refuse_service(quota_settings: None, settings: Any) -> None:
    """Quotas fail open: a claim or a budget check the store cannot answer lets the user through."""
    from streaming.quotas import check_word_budget

    settings.STREAMING = {**settings.STREAMING, "DAILY_WORD_LIMIT": 1}
    store = DownStore()
    assert all([await Leases(store, list).claim(lease) for lease in alice_streams(5)])
    await check_word_budget(store, 7)


async def test_memory_store_counts_words_per_flush_and_at_the_end() -> None:
    """Words of the day come from the words written (each tick, and the rest at the end), per owner."""
    store = MemoryStore()
    words: list[str] = []
    await store.open_session("s", 7, "p", 150, words)
    words += ["Hook: ", "brew "]
    await store.flush()
    assert await store.words_used(7, utc_day()) == 2
    words += ["slowly. "]
    await store.close_session("s", {"type": "stream.cancelled", "seq": 3}, 60)
    await store.flush()
    assert await store.words_used(7, utc_day()) == 3
    assert await store.words_used(8, utc_day()) == 0
