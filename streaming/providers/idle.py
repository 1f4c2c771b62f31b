"""A limit on each wait for the next event of a stream, without a timer per event.

`asyncio.timeout()` around every read schedules and cancels a timer per chunk, which costs more than parsing the
chunk. This keeps one timer per stream that re-arms itself only when it fires (once per limit period): each wait
just records when it began. When a wait has lasted the whole limit the timer cancels the waiting task, and
`expired()` tells that cancellation apart from any other (the way `asyncio.timeout()` does, by its count).
"""

from __future__ import annotations

import asyncio


class IdleTimeout(TimeoutError):
    """No event came within the limit."""


class IdleTimer:
    """Bounds every wait of one reader to `limit_s`; call `waiting()` before each wait and `done()` after it."""

    __slots__ = ("_cancelling", "_fired", "_handle", "_loop", "_started", "_task", "limit_s")

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[object] | None = None  # the task waiting now, if any
        self._started = 0.0
        self._cancelling = 0  # the reader's count of pending cancellations when its wait began
        self._fired = False  # this timer cancelled the reader

    def waiting(self, task: asyncio.Task[object]) -> None:
        """`task` starts waiting for the next event now."""
        if self._loop is None:
            self._loop = task.get_loop()
            self._handle = self._loop.call_at(self._loop.time() + self.limit_s, self._fire)
        self._task = task
        self._started = self._loop.time()
        self._cancelling = task.cancelling()

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
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        task, due = self._task, self._started + self.limit_s
        if task is None or now < due:
            # Nobody waits (the consumer is busy), or the wait began later than this timer was set for.
            self._handle = self._loop.call_at(due if task is not None else now + self.limit_s, self._fire)
            return
        self._handle = None
        self._fired = True
        task.cancel()
