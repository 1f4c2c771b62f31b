"""asyncio's socket transport, freed by reference counting once its connection is lost (Python 3.11).

Python 3.11's `_SelectorSocketTransport` keeps its read callback as a bound method of itself
(`_read_ready_cb`), so every closed connection under uvicorn (and any asyncio server) is a reference cycle that
only a full collection frees. The process collects its young generation rarely (streaming.registry
`tune_garbage_collection`), so those cycles would pile up between full collections: ~1 KB per closed socket,
+5 MB over a soak of 10,000 sessions. Once the connection is lost the transport never reads again, so the
callback is dropped with it.
"""

from __future__ import annotations

from asyncio import selector_events
from typing import Any


def install() -> None:
    transport: Any = getattr(selector_events, "_SelectorSocketTransport")  # noqa: B009 - private, untyped
    if getattr(transport, "_creatornexus_patched", False):
        return
    original = transport._call_connection_lost

    def call_connection_lost(self: Any, exc: BaseException | None) -> None:
        try:
            original(self, exc)
        finally:
            self._read_ready_cb = None

    setattr(transport, "_call_connection_lost", call_connection_lost)  # noqa: B010
    setattr(transport, "_creatornexus_patched", True)  # noqa: B010
