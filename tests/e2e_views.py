"""Test-only HTTP views, routed only by tests/e2e_urls.py (the test servers' URLconf): break things on purpose."""

from __future__ import annotations

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
