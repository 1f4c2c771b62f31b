"""Calls made together, sent together: one Redis round trip for every call waiting at one moment.

redis-py costs the event loop ~100-150 us of Python per command at 1,000 concurrent callers (packing, the
pool's lock and condition, a timeout per read): 2,000 streams starting within a second asked ~6,000 commands
of it, ~1.2 s of CPU, and as many ending ~1.7 s (`bench.flush_cost`). A Batcher hands every call that waits at
one moment to one `write` of them all, a script call or one MGET.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """One writer task at a time, started by the first call that waits and ending when none is left.

    A call made while a batch is being written goes in the next one: nothing waits longer than one round trip
    behind another, and nothing is held back on purpose (no timer). `write` gets the items in call order and
    returns one result per item; if it raises, every call of that batch raises it.
    """

    def __init__(self, write: Callable[[list[T]], Awaitable[Sequence[R]]], name: str, most: int = 1000) -> None:
        self._write = write
        self._name = name
        self._most = most  # items per write: one script call never holds Redis for long
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._run(), name=self._name)
        return await future

    async def _run(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._most], self._waiting[self._most :]
            try:
                results = await self._write([item for item, _future in batch])
            except asyncio.CancelledError:
                self._fail(batch, ConnectionError(f"{self._name}: the store closed"))
                raise
            except Exception as exc:
                self._fail(batch, exc)
                continue
            for (_item, future), result in zip(batch, results, strict=True):
                if not future.done():  # its caller was cancelled meanwhile
                    future.set_result(result)

    @staticmethod
    def _fail(batch: list[tuple[T, asyncio.Future[R]]], exc: BaseException) -> None:
        for _item, future in batch:
            if not future.done():
                future.set_exception(exc)

    async def aclose(self) -> None:
        """Stop writing; calls still waiting raise ConnectionError (their callers treat the store as down)."""
        waiting, self._waiting = self._waiting, []
        self._fail(waiting, ConnectionError(f"{self._name}: the store closed"))
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
