"""Requests made in the same pass of the event loop go out as one call: a storm of 1,000 handshakes costs a few
round trips to the store instead of 1,000, each of which waited for one of the pool's connections.

Used for lease claims (quotas.py), the users and logins of handshakes (accounts/users.py), and the Redis store's
lease releases and word counts: redis-py costs the event loop ~100-150 us of Python per command among 1,000
concurrent callers, and 2,000 streams ending together asked ~1.7 s of CPU of it (`bench.flush_cost`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class PassBatch(Generic[T, R]):
    """Queues items; one task sends all that are queued in one call, then all that queued meanwhile, and so on.

    One call at a time: an item that arrives while a call runs waits for the next one, so every item is
    answered by a call that started after it arrived (nothing is answered from a read older than its request).
    `call` answers a list of items with one result per item, in order.
    """

    def __init__(self, call: Callable[[list[T]], Awaitable[list[R]]], name: str) -> None:
        self._call = call
        self._name = name
        self._queued: list[tuple[T, asyncio.Future[R]]] = []
        self._sender: asyncio.Task[None] | None = None
        self._closed = False

    async def submit(self, item: T) -> R:
        """The result of `item`, from the next call; the call's exception if it failed."""
        if self._closed:
            raise ConnectionError(f"{self._name}: closed")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queued.append((item, future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_all(), name=self._name)
        return await future

    async def _send_all(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                results = await self._answers([item for item, _ in batch])
            except Exception as exc:
                _fail(batch, exc)
                continue
            except BaseException:
                # Cancelled (aclose, the loop closing): nothing queued is sent later, after its waiter gave up.
                queued, self._queued = self._queued, []
                _fail(batch + queued, ConnectionError(f"{self._name}: closed"))
                raise
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():  # its waiter was cancelled meanwhile
                    future.set_result(result)

    async def _answers(self, items: list[T]) -> list[R]:
        """The call's results, one per item; anything else fails the batch rather than leave items waiting."""
        results = await self._call(items)
        if len(results) != len(items):
            raise RuntimeError(f"{self._name}: {len(results)} results for {len(items)} items")
        return results

    async def aclose(self) -> None:
        """Stop sending (the store closes): every item waiting, in a call under way or queued, gets
        ConnectionError (callers treat the store as down), and later submits too."""
        self._closed = True
        queued, self._queued = self._queued, []
        _fail(queued, ConnectionError(f"{self._name}: closed"))
        if self._sender is not None and not self._sender.done():
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)


def _fail(items: list[tuple[Any, asyncio.Future[Any]]], exc: BaseException) -> None:
    for _, future in items:
        if not future.done():
            future.set_exception(exc)
