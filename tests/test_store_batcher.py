"""The store's Batcher: calls that come together are one write, in call order; nothing waits behind a timer."""

from __future__ import annotations

import asyncio

import pytest

from streaming.store.batcher import Batcher


class Writes:
    """A write that records its batches; `gate` (when set) holds the write until the test opens it."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.gate: asyncio.Event | None = None
        self.fail_on = fail_on

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(items)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_on in items:
            raise ConnectionError("store down")
        return [item * 10 for item in items]


async def writing_started(writes: Writes) -> None:
    async with asyncio.timeout(5):
        while not writes.batches:
            await asyncio.sleep(0)  # a yield, not a wait: the writer task runs its first step


async def test_calls_made_together_are_one_write_in_call_order() -> None:
    writes = Writes()
    batcher = Batcher(writes, "test")
    assert await asyncio.gather(*(batcher(i) for i in range(5))) == [0, 10, 20, 30, 40]
    assert writes.batches == [[0, 1, 2, 3, 4]]


async def test_a_call_made_during_a_write_goes_in_the_next_one() -> None:
    writes = Writes()
    writes.gate = asyncio.Event()
    batcher = Batcher(writes, "test")
    first = asyncio.ensure_future(batcher(1))
    await writing_started(writes)
    second = asyncio.ensure_future(batcher(2))
    writes.gate.set()
    assert await asyncio.gather(first, second) == [10, 20]
    assert writes.batches == [[1], [2]]


async def test_a_failed_write_fails_its_own_calls_only() -> None:
    writes = Writes(fail_on=1)
    writes.gate = asyncio.Event()
    batcher = Batcher(writes, "test")
    first = asyncio.ensure_future(batcher(1))
    await writing_started(writes)
    second = asyncio.ensure_future(batcher(2))
    writes.gate.set()
    with pytest.raises(ConnectionError):
        await first
    assert await second == 20


async def test_a_cancelled_caller_leaves_the_others_their_results() -> None:
    writes = Writes()
    writes.gate = asyncio.Event()
    batcher = Batcher(writes, "test")
    calls = [asyncio.ensure_future(batcher(i)) for i in range(3)]
    await writing_started(writes)
    calls[1].cancel()
    writes.gate.set()
    assert await calls[0] == 0
    assert await calls[2] == 20
    assert calls[1].cancelled()


async def test_a_batch_holds_at_most_most_items() -> None:
    writes = Writes()
    batcher = Batcher(writes, "test", most=2)
    assert await asyncio.gather(*(batcher(i) for i in range(5))) == [0, 10, 20, 30, 40]
    assert writes.batches == [[0, 1], [2, 3], [4]]


async def test_closing_fails_the_calls_still_waiting_and_stops_the_writer() -> None:
    writes = Writes()
    writes.gate = asyncio.Event()
    batcher = Batcher(writes, "test")
    writing = asyncio.ensure_future(batcher(1))
    await writing_started(writes)
    waiting = asyncio.ensure_future(batcher(2))
    await asyncio.sleep(0)
    await batcher.aclose()
    for call in (writing, waiting):
        with pytest.raises(ConnectionError):
            await call
