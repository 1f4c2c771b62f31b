"""The OpenAI stream's idle limit: one timer per stream, a wait that lasts the limit ends in IdleTimeout."""

from __future__ import annotations

import asyncio

import pytest

from streaming.providers.idle import IdleTimeout, IdleTimer

pytestmark = pytest.mark.timeout(10)


async def wait_once(timer: IdleTimer, event: asyncio.Future[str]) -> str:
    """One wait under the timer, as OpenAIScriptStream._receive does it."""
    task = asyncio.current_task()
    assert task is not None
    timer.waiting(task)
    try:
        return await event
    except asyncio.CancelledError:
        if timer.expired(task):
            raise IdleTimeout from None
        raise
    finally:
        timer.done()


async def test_a_wait_past_the_limit_times_out() -> None:
    """Nothing comes within the limit: IdleTimeout, and the task is not left cancelled."""
    timer = IdleTimer(0.05)
    never: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    with pytest.raises(IdleTimeout):
        await wait_once(timer, never)
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0
    timer.stop()


async def test_events_within_the_limit_keep_the_stream_going() -> None:
    """Waits shorter than the limit each start a new limit: many of them outlast the limit in total."""
    timer = IdleTimer(0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(6):
        event: asyncio.Future[str] = loop.create_future()
        loop.call_later(0.05, event.set_result, "chunk")
        assert await wait_once(timer, event) == "chunk"
    assert loop.time() - started > timer.limit_s
    timer.stop()


async def test_another_cancellation_is_not_taken_for_a_timeout() -> None:
    """The limit and the owner's stop in the same loop iteration: the reader stays cancelled, no IdleTimeout."""
    timer = IdleTimer(0.05)
    loop = asyncio.get_running_loop()
    never: asyncio.Future[str] = loop.create_future()
    reader = asyncio.create_task(wait_once(timer, never))
    await asyncio.sleep(0)  # the reader waits now; its limit falls before the stop scheduled next
    loop.call_at(loop.time() + timer.limit_s, reader.cancel)
    # Hold the loop (no yield) until both are due, so that one iteration runs the limit and then the stop.
    deadline = loop.time() + timer.limit_s + 0.01
    while loop.time() < deadline:
        pass
    with pytest.raises(asyncio.CancelledError):
        await reader
    timer.stop()


async def test_stop_ends_the_timer() -> None:
    """After stop() the timer never cancels anything."""
    timer = IdleTimer(0.01)
    task = asyncio.current_task()
    assert task is not None
    timer.waiting(task)
    timer.done()
    timer.stop()
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.05, done.set_result, None)
    await done  # would raise CancelledError if the timer had fired
