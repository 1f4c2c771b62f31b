"""A limit on each wait for the next event of a stream, without a timer per event.

`asyncio.timeout()` around every read schedules and cancels a timer per chunk, which costs more than parsing the
chunk. This keeps one timer per stream that re-arms itself only when it fires (once per limit period, and not
at all while nobody waits): each wait just records when it began. When a wait has lasted the whole limit the
timer cancels the waiting task, and `expired()` tells that cancellation apart from any other (the way
`asyncio.timeout()` does, by its count).
"""

from __future__ import annotations

import asyncio


class IdleTimeout(TimeoutError):
    """No event came within the limit."""


class IdleTimer:
    """Bounds every wait of one reader to `limit_s`; call `waiting()` before each wait and `done()` after it."""

    __slots__ = ("_cancelling", "_fired", "_handle", "_loop", "_started", "_stopped", "_task", "limit_s")

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[object] | None = None  # the task waiting now, if any
        self._started = 0.0
        self._cancelling = 0  # the reader's count of pending cancellations when its wait began
        self._fired = False  # this timer cancelled the reader
        self._stopped = False

    def waiting(self, task: asyncio.Task[object]) -> None:
        """`task` starts waiting for the next event now."""
        loop = self._loop = self._loop or task.get_loop()
        self._task = task
        self._started = loop.time()
        self._cancelling = task.cancelling()
        if self._handle is None and not self._stopped:
            self._handle = loop.call_at(self._started + self.limit_s, self._fire)

    def touch(self) -> None:
        """An event came: the wait under way starts over (push mode, where one wait lasts the whole stream)."""
        if self._loop is not None:
            self._started = self._loop.time()

    def done(self) -> None:
        """The wait ended (an event, an error or a cancellation)."""
        self._task = None

    def expired(self, task: asyncio.Task[object]) -> bool:
        """In `except CancelledError`: True when this timer's cancellation, and only it, ended the wait."""
        if not self._fired:
            return False
        self._fired = False
        # Someone else cancelled too (the runner's stop, a deadline): their cancellation goes on.
        return task.uncancel() <= self._cancelling

    def stop(self) -> None:
        """The stream ended: no more firing."""
        self._stopped = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        assert self._loop is not None
        self._handle = None
        task = self._task
        if task is None:
            return  # nobody waits (the consumer is busy): the next wait arms the timer again
        due = self._started + self.limit_s
        if self._loop.time() < due:
            self._handle = self._loop.call_at(due, self._fire)  # this wait began after the timer was set
            return
        self._fired = True
        task.cancel()
