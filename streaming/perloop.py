"""One object per running event loop: Redis clients, tasks and futures belong to the loop that made them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """Holds one T per event loop, made on first use; entries of closed loops are dropped."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._items: dict[asyncio.AbstractEventLoop, T] = {}

    def get(self) -> tuple[T, bool]:
        """This loop's object, and whether it was made just now."""
        loop = asyncio.get_running_loop()
        item = self._items.get(loop)
        if item is not None:
            return item, False
        for stale in [known for known in self._items if known.is_closed()]:
            del self._items[stale]
        item = self._items[loop] = self._factory()
        return item, True

    def pop(self) -> T | None:
        return self._items.pop(asyncio.get_running_loop(), None)
