"""A stopping process is never held by one stuck piece: the registry's shutdown waits for each at most so long
and names what it left behind (a task that goes on after its cancel, a write queued behind a stuck call)."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils.timezone import now

from streaming import registry, services
from streaming.models import Connection

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


class Stubborn:
    """A loop that ignores its cancel (as one stuck in a call that swallows it would), until told to stop."""

    def __init__(self) -> None:
        self.stop = False
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.never = asyncio.Event()  # what it waits for: nothing sets it

    async def run(self) -> None:
        self.started.set()
        while not self.stop:
            try:
                await self.never.wait()
            except asyncio.CancelledError:
                self.cancelled.set()


@pytest.mark.django_db(transaction=True)
async def test_a_stuck_loop_leaves_the_close_its_time_for_the_last_rows(
    user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The registry's close gives its own cancelled loops a second, names a stuck one and where it waits, and
    still writes the connection rows logged before it (a stuck heartbeat once took all the time: rows were lost)."""
    process = await registry.get_registry()
    stubborn = Stubborn()
    task = asyncio.create_task(stubborn.run(), name="stuck-loop")
    process._loops.append(task)
    async with asyncio.timeout(TIMEOUT_S):
        await stubborn.started.wait()
    connection_id = str(uuid.uuid4())
    process.log_open(services.ConnectionOpened(connection_id, user.pk, "127.0.0.1", "ua", process.process_id, now()))
    try:
        with caplog.at_level(logging.WARNING, logger="streaming.registry"):
            async with asyncio.timeout(registry.CLOSE_TIMEOUT_S + 5):
                await registry.close_registry()
        assert stubborn.cancelled.is_set()
        assert f"did not end within {registry.LOOP_END_S:.1f}s" in caplog.text
        assert "stuck-loop at Event.wait (locks.py:" in caplog.text  # where it waits, innermost first
        assert "< Stubborn.run (test_shutdown_bounds.py:" in caplog.text
        assert "connection rows" not in caplog.text
        assert await Connection.objects.filter(id=connection_id).aexists()
    finally:
        stubborn.stop = True
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_loop_whose_step_swallowed_its_cancel_still_ends() -> None:
    """Python 3.11's wait_for (under every redis-py command) can drop a cancel that lands as the command ends:
    the step returns as if nothing happened, and the loop must end anyway instead of sleeping on."""
    in_step = asyncio.Event()

    async def step() -> None:
        in_step.set()
        try:
            await asyncio.Event().wait()  # nothing sets it: only the cancel ends this wait
        except asyncio.CancelledError:
            return  # swallowed, as wait_for does when its inner task completed at that moment

    loop_task = asyncio.create_task(registry.ProcessRegistry._every(0, step))
    async with asyncio.timeout(TIMEOUT_S):
        await in_step.wait()
    loop_task.cancel()
    done, _ = await asyncio.wait({loop_task}, timeout=TIMEOUT_S)
    assert loop_task in done and loop_task.cancelled()
