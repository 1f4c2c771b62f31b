"""PassBatch: items of one loop pass share one call; an item is never answered by a call that began before it."""

from __future__ import annotations

import asyncio

import pytest

from streaming.passbatch import PassBatch


class Recorder:
    """A call that records its batches and, when held, waits until released (an event, no timing)."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.hold = asyncio.Event()
        self.hold.set()
        self.entered = asyncio.Event()
        self.fail: Exception | None = None

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(items)
        self.entered.set()
        await self.hold.wait()
        if self.fail is not None:
            raise self.fail
        return [item * 10 for item in items]


async def call_under_way() -> tuple[Recorder, PassBatch[int, int], asyncio.Task[int]]:
    """A batch whose call for item 1 has begun and is held there until the test sets `hold`."""
    call = Recorder()
    call.hold.clear()
    batch: PassBatch[int, int] = PassBatch(call, "test")
    first = asyncio.create_task(batch.submit(1))
    await call.entered.wait()
    return call, batch, first


async def test_items_of_one_pass_share_one_call() -> None:
    """Ten submits in the same pass: one call with all ten, each gets its own result."""
    call = Recorder()
    batch: PassBatch[int, int] = PassBatch(call, "test")
    assert await asyncio.gather(*(batch.submit(i) for i in range(10))) == [i * 10 for i in range(10)]
    assert call.batches == [list(range(10))]


async def test_an_item_arriving_during_a_call_waits_for_the_next() -> None:
    """While a call runs, a new item is not added to it: it goes in the following call."""
    call, batch, first = await call_under_way()
    second = asyncio.create_task(batch.submit(2))
    third = asyncio.create_task(batch.submit(3))
    await asyncio.sleep(0)
    assert call.batches == [[1]]
    call.hold.set()
    assert await asyncio.gather(first, second, third) == [10, 20, 30]
    assert call.batches == [[1], [2, 3]]


async def test_a_failed_call_fails_its_items_only() -> None:
    """The call's exception reaches every item of its batch; a later item gets a call of its own."""
    call = Recorder()
    call.fail = ConnectionError("down")
    batch: PassBatch[int, int] = PassBatch(call, "test")
    results = await asyncio.gather(batch.submit(1), batch.submit(2), return_exceptions=True)
    assert [type(result) for result in results] == [ConnectionError, ConnectionError]
    call.fail = None
    assert await batch.submit(3) == 30
    assert call.batches == [[1, 2], [3]]


async def test_a_cancelled_waiter_does_not_break_the_batch() -> None:
    """One item's waiter is cancelled mid-call: the others still get their results."""
    call = Recorder()
    call.hold.clear()
    batch: PassBatch[int, int] = PassBatch(call, "test")
    gone = asyncio.create_task(batch.submit(1))
    kept = asyncio.create_task(batch.submit(2))
    await call.entered.wait()
    gone.cancel()
    call.hold.set()
    assert await kept == 20
    assert gone.cancelled()


async def test_closing_fails_the_queued_items_and_stops_the_call_under_way() -> None:
    """The store closes: the item in the running call and the one queued behind it both raise ConnectionError
    (callers treat the store as down), nothing hangs, the queued item is never sent, later submits raise too."""
    call, batch, running = await call_under_way()
    queued = asyncio.create_task(batch.submit(2))
    await asyncio.sleep(0)  # a yield: the second submit queues
    await batch.aclose()
    for waiter in (queued, running):
        with pytest.raises(ConnectionError):
            await waiter
    with pytest.raises(ConnectionError):
        await batch.submit(3)
    assert call.batches == [[1]]  # the queued item was never sent


async def test_a_call_answering_too_few_fails_its_batch_instead_of_leaving_it_waiting() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    batch: PassBatch[int, int] = PassBatch(short, "test")
    results = await asyncio.wait_for(asyncio.gather(batch.submit(1), batch.submit(2), return_exceptions=True), 5)
    assert [type(result) for result in results] == [RuntimeError, RuntimeError]
