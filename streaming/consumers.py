"""The WebSocket consumer: authenticate, parse -> dispatch -> hand off; no business logic here."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from streaming import protocol, services
from streaming.protocol import Cancel, ClientError, CloseCode, ErrorCode, Ping, Pong, Resume, ScriptRequest
from streaming.ratelimit import TokenBucket
from streaming.registry import ProcessRegistry, get_registry
from streaming.sessions import SessionsOfConnection

logger = logging.getLogger(__name__)

# Backoff while the channel layer (Redis) is unreachable: the socket stays open, wake-ups resume after.
LAYER_RETRY_FIRST_S = 0.5
LAYER_RETRY_MAX_S = 5.0


async def receive_through_outages(receive: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """The next channel-layer message, waiting out layer failures instead of raising them."""
    delay = LAYER_RETRY_FIRST_S
    while True:
        try:
            return await receive()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("channel layer receive failed (%s); retrying in %.1fs", type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, LAYER_RETRY_MAX_S)


class StreamConsumer(AsyncWebsocketConsumer):
    """One per socket. Generations run in registry-owned tasks, so every frame is answered at once."""

    registry: ProcessRegistry | None = None
    sessions: SessionsOfConnection | None = None
    connection_id: str = ""

    @property
    def channel_receive(self) -> Callable[[], Awaitable[dict[str, Any]]]:
        return self._channel_receive

    @channel_receive.setter
    def channel_receive(self, receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        """Channels sets this to the layer's receive; a Redis outage must not kill the socket (1011)."""
        self._channel_receive = partial(receive_through_outages, receive)

    async def connect(self) -> None:
        user = self.scope.get("user")
        subprotocol = self.scope.get("cn_subprotocol")
        if user is None or not user.is_authenticated:
            # Accept, then close at once: browsers only see close codes (4401) on an opened socket.
            await self.accept(subprotocol)
            await self.close(code=int(CloseCode.UNAUTHORIZED))  # autobahn refuses anything but a plain int
            return
        self.registry = await get_registry()
        self.connection_id = str(uuid.uuid4())
        self.last_received = self.last_pinged = time.monotonic()
        self.ping_counter = 0
        knobs = settings.STREAMING
        self.bucket = TokenBucket(knobs["RATE_LIMIT_BURST"], knobs["RATE_LIMIT_PER_S"])
        await database_sync_to_async(services.connection_open)(
            connection_id=self.connection_id,
            user_id=user.pk,
            client_address=self._client_address(),
            user_agent=self._header(b"user-agent"),
            process_id=self.registry.process_id,
        )
        self.sessions = SessionsOfConnection(
            self.registry, user.pk, self.connection_id, self.channel_name, self.send_text
        )
        await self.accept(subprotocol)
        self.registry.connections.add(self)
        await self.send_frame(protocol.connection_established(self.connection_id, user.pk, user.get_username()))

    async def disconnect(self, code: int) -> None:
        if self.registry is None or self.sessions is None:
            return
        self.registry.connections.discard(self)
        await self.sessions.close()
        await database_sync_to_async(services.connection_close)(connection_id=self.connection_id, close_code=code)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.sessions is None:
            return
        self.last_received = time.monotonic()
        try:
            self._admit()
            frame = protocol.parse_client_frame(text_data, bytes_data, settings.STREAMING["MAX_FRAME_BYTES"])
            try:
                await self.dispatch_frame(frame)
            except ClientError as exc:
                # Services do not know the request; the error still answers it.
                exc.request_id = exc.request_id or getattr(frame, "request_id", None)
                raise
        except ClientError as exc:
            if exc.code is not ErrorCode.RATE_LIMITED or self.bucket.should_report(self.last_received):
                await self.send_frame(protocol.error(exc.code, exc.message, exc.request_id))
        except Exception:
            logger.exception("frame handling failed on connection %s", self.connection_id)
            await self.send_frame(protocol.error(ErrorCode.INTERNAL_ERROR, "The server failed to handle that frame."))

    def _admit(self) -> None:
        if not self.bucket.take(self.last_received):
            raise ClientError(ErrorCode.RATE_LIMITED, "Too many frames; slow down.")

    async def dispatch_frame(self, frame: protocol.ClientFrame) -> None:
        assert self.sessions is not None
        match frame:
            case Ping(id=ping_id):
                await self.send_frame(protocol.pong(ping_id))
            case Pong():
                pass
            case ScriptRequest():
                await self.sessions.generate(frame)
            case Cancel():
                await self.sessions.cancel(frame)
            case Resume():
                await self.sessions.resume(frame)

    async def stream_wake(self, event: dict[str, Any]) -> None:
        """Channel-layer nudge: new words or the end of a session this connection watches elsewhere."""
        if self.sessions is not None:
            await self.sessions.on_wake(event["session_id"])

    async def tick(self, now: float) -> None:
        """Called by the registry every second: server pings and the idle timeout."""
        knobs = settings.STREAMING
        if now - self.last_received >= knobs["CONNECTION_TIMEOUT_S"]:
            if self.registry is not None:
                self.registry.connections.discard(self)
            await self.close(code=int(CloseCode.IDLE_TIMEOUT))
        elif now - self.last_pinged >= knobs["HEARTBEAT_INTERVAL_S"]:
            self.last_pinged = now
            self.ping_counter += 1
            await self.send_frame(protocol.ping(self.ping_counter))

    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=protocol.encode(frame))

    async def send_text(self, text: str) -> None:
        await self.send(text_data=text)

    def _header(self, name: bytes) -> str:
        for key, value in self.scope.get("headers", []):
            if key == name:
                return str(value.decode("latin-1"))
        return ""

    def _client_address(self) -> str:
        client = self.scope.get("client")
        return str(client[0]) if client else ""
