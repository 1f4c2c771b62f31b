"""WebSocket URL routes: the stream socket at its paths; every other path refused at the handshake."""

from collections.abc import Awaitable, Callable
from typing import Any

from django.urls import path, re_path

from streaming.consumers import StreamConsumer

# `/ws` is where the Node service this replaces served its socket (`/ws?token=<jwt>`): its clients keep working.
STREAM_PATHS = ("ws/stream/", "ws/stream", "ws/", "ws")


async def refuse_unknown_path(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """Refuse the handshake (HTTP 403). Without a catch-all, URLRouter raises and the server logs a traceback."""
    if (await receive())["type"] == "websocket.connect":
        await send({"type": "websocket.close"})


stream = StreamConsumer.as_asgi()

websocket_urlpatterns = [
    *(path(route, stream) for route in STREAM_PATHS),
    # django-stubs types route targets as views; Channels routes to ASGI apps (as_asgi() is untyped, so it passes).
    re_path(r"", refuse_unknown_path),  # type: ignore[arg-type]
]
