"""The baseline: a bare Channels consumer under Daphne that streams the same mock words with send_json.

No auth, no database, no channel layer, no store: the floor the product is compared against. Served as
`daphne bench.baseline:application`; MOCK_STREAM_DELAY_MS paces it like the product's mock provider.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-baseline",
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=["channels"],
        CHANNEL_LAYERS={},
    )
    django.setup()

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path

from streaming.protocol import Platform, ScriptRequest
from streaming.providers.mock import MockScriptStream, mock_script

SUBPROTOCOL = "creatornexus.v1"


class BaselineConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Accept, say hello, and on `generate` stream the mock words: one send_json per word."""

    task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        offered = self.scope.get("subprotocols") or []
        await self.accept(SUBPROTOCOL if SUBPROTOCOL in offered else None)
        await self.send_json({"type": "connection.established"})

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        if content.get("type") == "generate":
            request = ScriptRequest(
                topic=content["topic"], platform=Platform(content["platform"]), duration=content["duration"]
            )
            self.task = asyncio.create_task(self.stream(request, content.get("request_id")))
        elif content.get("type") == "ping":
            await self.send_json({"type": "pong", "id": content.get("id")})

    async def stream(self, request: ScriptRequest, request_id: str | None) -> None:
        delay_s = int(os.environ.get("MOCK_STREAM_DELAY_MS", "25")) / 1000
        session_id, estimated = str(uuid.uuid4()), request.estimated_words
        # The product's own mock stream: the same words, paced the same way.
        words = MockScriptStream(mock_script(request), delay_s)
        await self.send_json(
            {
                "type": "stream.started",
                "request_id": request_id,
                "session_id": session_id,
                "estimated_words": estimated,
                "provider": "mock",
            }
        )
        seq = 0
        async for word in words:
            seq += 1
            await self.send_json(
                {
                    "type": "stream.chunk",
                    "session_id": session_id,
                    "seq": seq,
                    "text": word,
                    "words": seq,
                    "progress": round(min(seq / estimated, 0.99), 4),
                }
            )
        await self.send_json(
            {"type": "stream.completed", "session_id": session_id, "seq": seq, "words": seq, "progress": 1.0}
        )

    async def disconnect(self, code: int) -> None:
        if self.task is not None:
            self.task.cancel()


async def http_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """200 for any request, so the bench can wait for readiness on /healthz like the product."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


application = ProtocolTypeRouter(
    {"http": http_app, "websocket": URLRouter([path("ws/stream/", BaselineConsumer.as_asgi())])}
)
