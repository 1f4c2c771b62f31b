"""Test-only HTTP views, routed only by tests/e2e_urls.py (the test servers' URLconf): break things on purpose."""

from __future__ import annotations

import asyncio
import collections
import gc
import time

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from streaming.registry import get_registry

# A plain server-side close, not 1012 (a drain): the client must reconnect after any drop, and these tests show it.
SERVER_CLOSED = 1000


@csrf_exempt
@require_POST
async def drop_sockets(request: HttpRequest) -> JsonResponse:
    """Close every WebSocket of this process from the server side; the generations keep running."""
    registry = await get_registry()
    consumers = tuple(registry.connections)
    for consumer in consumers:
        await consumer.close(code=SERVER_CLOSED)
    return JsonResponse({"closed": len(consumers)})


@csrf_exempt
@require_POST
async def settle(request: HttpRequest) -> JsonResponse:
    """Commit this process's pending connection rows now (tests truncate the database after each test)."""
    registry = await get_registry()
    await registry.write_connection_rows()
    return JsonResponse({"settled": True})


@csrf_exempt
@require_POST
async def garbage(request: HttpRequest) -> JsonResponse:
    """?start=1: from now on, keep what the cycle collector finds (gc.DEBUG_SAVEALL), to be counted.

    Otherwise: wait (at most 10 s) until Daphne has let go of every WebSocket protocol that is not garbage, then
    collect and count the kept garbage by type ("module:qualname"): what reference counting did not free.
    """
    if request.GET.get("start"):
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        return JsonResponse({"started": True})
    deadline = time.monotonic() + 10
    while _live_websocket_protocols() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # Daphne's application_checker forgets closed connections once a second
    gc.collect()
    kept = collections.Counter(f"{type(obj).__module__}:{type(obj).__qualname__}" for obj in gc.garbage)
    gc.garbage.clear()
    return JsonResponse({"live": _live_websocket_protocols(), "total": kept.total(), "types": dict(kept)})


def _live_websocket_protocols() -> int:
    """The server's WebSocket protocols (Daphne's or uvicorn's) still referenced from outside the garbage."""
    from daphne.ws_protocol import WebSocketProtocol
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    gc.collect()  # what is unreachable goes to gc.garbage, out of gc.get_objects()
    kept = {id(obj) for obj in gc.garbage}
    protocols = (WebSocketProtocol, WebSocketsSansIOProtocol)
    return sum(1 for obj in gc.get_objects() if isinstance(obj, protocols) and id(obj) not in kept)
