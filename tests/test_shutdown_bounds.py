"""A stopping process is never held by one stuck piece: the registry's shutdown waits for each at most so long
and names what it left behind (a task that goes on after its cancel, a write queued behind a stuck call)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator

import pytest
from asgiref.sync import sync_to_async

from streaming import registry

TIMEOUT_S = 5


@pytest.fixture
def stuck_call() -> Iterator[tuple[threading.Event, threading.Event]]:
    """(started, release): a call on a worker thread that waits until released, as a query on a lock does."""
    started, release = threading.Event(), threading.Event()
    yield started, release
    release.set()


async def test_a_task_that_goes_on_after_its_cancel_is_left_behind_and_named(
    stuck_call: tuple[threading.Event, threading.Event], caplog: pytest.LogCaptureFixture
) -> None:
    started, release = stuck_call
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def finish_write() -> None:
        started.set()
        release.wait(TIMEOUT_S)

    began = asyncio.Event()

    async def sweep() -> None:
        began.set()
        try:
            await never
        finally:  # cancelled: it finishes its write first, on a worker thread
            await sync_to_async(finish_write, thread_sensitive=False)()

    task = asyncio.create_task(sweep(), name="rows-sweep")
    async with asyncio.timeout(TIMEOUT_S):
        await began.wait()
    task.cancel()
    with caplog.at_level(logging.WARNING, logger="streaming.registry"):
        async with asyncio.timeout(TIMEOUT_S):
            await registry._ended([task], 0.1)
    assert not task.done()  # still finishing: left behind, not waited for
    assert await asyncio.to_thread(started.wait, TIMEOUT_S)
    assert "rows-sweep" in caplog.text and "did not end within 0.1s" in caplog.text
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_shutdown_step_stuck_or_failing_is_logged_not_waited_for_or_raised(
    stuck_call: tuple[threading.Event, threading.Event], caplog: pytest.LogCaptureFixture
) -> None:
    started, release = stuck_call

    def write_rows() -> None:
        started.set()
        release.wait(TIMEOUT_S)

    async def fails() -> None:
        raise ConnectionError("store down")

    with caplog.at_level(logging.WARNING, logger="streaming.registry"):
        async with asyncio.timeout(TIMEOUT_S):
            await registry._within(sync_to_async(write_rows, thread_sensitive=False)(), "the last rows", 0.1)
            await registry._within(fails(), "the last words", 1)
    assert "the last rows did not finish within 0.1s" in caplog.text
    assert "the last words failed" in caplog.text
    assert await asyncio.to_thread(started.wait, TIMEOUT_S)


async def test_steps_that_end_in_time_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    async def quick() -> int:
        return 1

    done = asyncio.create_task(quick())
    await done
    with caplog.at_level(logging.WARNING, logger="streaming.registry"):
        await registry._ended([done], 1)
        await registry._within(quick(), "a quick step", 1)
    assert caplog.text == ""
