"""Generations' database rows in batches: every create (and every end) waiting at one moment is written in one
trip to the one database thread.

Through database_sync_to_async one row at a time, 1,500 generations starting within a second cost ~0.5 ms of
Django each on the database thread, holding the GIL the event loop needs for most of that second; their ends,
as many again. A batch is one thread hop, one bulk INSERT and one executemany of the ends (services.py).
A generation still waits for its own row before its first word, as before: a start the database refuses
fails that generation alone.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.db import database_sync_to_async

from streaming import services
from streaming.perloop import PerLoop

logger = logging.getLogger(__name__)

# A batch writer stuck on the database is given this long when the registry closes.
CLOSE_WAIT_S = 5.0


class SessionRows:
    """One writer task at a time, started by the first row that waits and ending when none is left."""

    def __init__(self) -> None:
        self._starts: list[tuple[services.SessionStart, asyncio.Future[int]]] = []
        self._ends: list[tuple[services.SessionEnd, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def create(self, start: services.SessionStart) -> int:
        """Create the generation's row; its script id."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._starts.append((start, future))
        self._wake()
        return await future

    async def finish(self, end: services.SessionEnd) -> None:
        """Save the generation's end (a row already ended elsewhere is kept)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ends.append((end, future))
        self._wake()
        await future

    async def aclose(self) -> None:
        """Let the rows already asked for be written (bounded), then stop."""
        if self._writer is not None and not self._writer.done():
            try:
                async with asyncio.timeout(CLOSE_WAIT_S):
                    await asyncio.shield(self._writer)
            except TimeoutError:
                self._writer.cancel()
                await asyncio.gather(self._writer, return_exceptions=True)

    def _wake(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="session-rows")

    async def _write(self) -> None:
        """Write what waits; what arrived meanwhile goes in the next batch, until nothing waits."""
        while self._starts or self._ends:
            starts, self._starts = self._starts, []
            ends, self._ends = self._ends, []
            try:
                created = await database_sync_to_async(services.sessions_record)(
                    starts=[start for start, _future in starts], ends=[end for end, _future in ends]
                )
            except Exception as exc:
                logger.warning("writing %d session rows failed (%s)", len(starts) + len(ends), type(exc).__name__)
                _settle([future for _start, future in starts] + [future for _end, future in ends], exc)
                continue
            for (_start, future), result in zip(starts, created, strict=True):
                _settle([future], result)
            _settle([future for _end, future in ends], None)


def _settle(futures: list[asyncio.Future[Any]], result: object) -> None:
    for future in futures:
        if future.done():
            continue  # its generation was cancelled while waiting
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)


_rows: PerLoop[SessionRows] = PerLoop(SessionRows)


def get_session_rows() -> SessionRows:
    """This event loop's row writer."""
    rows, _new = _rows.get()
    return rows


async def close_session_rows() -> None:
    rows = _rows.pop()
    if rows is not None:
        await rows.aclose()
