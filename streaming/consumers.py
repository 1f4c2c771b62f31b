"""The WebSocket consumer: authenticate, parse -> dispatch -> hand off; no business logic here."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import timezone

from streaming import protocol, services
from streaming.outbox import Outbox
from streaming.protocol import (
    Cancel,
    ClientError,
    CloseCode,
    ErrorCode,
    Ping,
    Pong,
    Resume,
    ScriptRequest,
)
from streaming.ratelimit import TokenBucket
from streaming.registry import ProcessRegistry, get_registry
from streaming.sessions import SessionsOfConnection

logger = logging.getLogger(__name__)


class StreamConsumer(AsyncWebsocketConsumer):
    """One per socket. Generations run in registry-owned tasks, so every frame is answered at once."""

    # No channel per socket: the registry holds one per process and fans wake-ups out to watches here.
    # get_channel_layer() documents None for an alias that is not configured.
    channel_layer_alias = "no-per-socket-channel"
    registry: ProcessRegistry | None = None
    sessions: SessionsOfConnection | None = None
    connection_id: str = ""
    outbox: Outbox
    # Set by the drain once this socket is being closed: nothing is sent after the close frame.
    leaving: bool = False
    gone: asyncio.Event  # set by disconnect(), once the connection row is logged

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Every frame leaves through the outbox, whose writer task lives exactly as long as this consumer."""
        self.outbox = Outbox(send, settings.STREAMING["MAX_BUFFERED_BYTES"])
        self.outbox.start()
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.outbox.aclose()

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels closes stale DB connections before every message, through the one ORM thread: a slow
        database would delay every frame. The ORM is only used through database_sync_to_async, which does that."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def close_with(self, code: CloseCode) -> None:
        """Close with the code's documented reason after the frames already queued; returns without waiting
        on the client (the outbox's writer sends it), so closing many sockets is never held up by a slow one."""
        self.outbox.close(code)

    async def leave(self, code: CloseCode) -> None:
        """The drain closes this socket: stop delivering, close with `code` after the frames already sent, and
        return once the client said goodbye (disconnect() has logged the connection row)."""
        self.leaving = True
        if self.sessions is not None:
            await self.sessions.close()
        await self.close_with(code)
        await self.gone.wait()

    async def connect(self) -> None:
        registry = await get_registry()
        if registry.draining:
            # Refused before accept (HTTP 403): the load balancer takes the client to another process.
            await self.close()
            return
        user = self.scope.get("user")
        subprotocol = self.scope.get("cn_subprotocol")
        if user is None or not user.is_authenticated:
            # Accept, then close at once: browsers only see close codes (4401) on an opened socket.
            await self.accept(subprotocol)
            await self.close_with(CloseCode.UNAUTHORIZED)
            return
        self.registry = registry
        self.connection_id = str(uuid.uuid4())
        self.last_received = self.last_pinged = time.monotonic()
        self.ping_counter = 0
        knobs = settings.STREAMING
        self.bucket = TokenBucket(knobs["RATE_LIMIT_BURST"], knobs["RATE_LIMIT_PER_S"])
        self.registry.log_open(
            services.ConnectionOpened(
                self.connection_id,
                user.pk,
                self._client_address(),
                self._header(b"user-agent"),
                self.registry.process_id,
                timezone.now(),
            )
        )
        self.sessions = SessionsOfConnection(self.registry, user.pk, self.connection_id, self.outbox.put)
        self.gone = asyncio.Event()
        await self.accept(subprotocol)
        self.registry.connections.add(self)
        await self.send_frame(protocol.connection_established(self.connection_id, user.pk, user.get_username()))

    async def disconnect(self, code: int) -> None:
        if self.registry is None or self.sessions is None:
            return
        self.registry.connections.discard(self)
        await self.sessions.close()
        self.registry.log_close(services.ConnectionClosed(self.connection_id, code, timezone.now()))
        self.gone.set()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.sessions is None or self.leaving:
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

    async def tick(self, now: float) -> None:
        """Called by the registry every second: server pings and the idle timeout."""
        knobs = settings.STREAMING
        if self.leaving:
            return
        if now - self.last_received >= knobs["CONNECTION_TIMEOUT_S"]:
            if self.registry is not None:
                self.registry.connections.discard(self)
            await self.close_with(CloseCode.IDLE_TIMEOUT)
        elif now - self.last_pinged >= knobs["HEARTBEAT_INTERVAL_S"]:
            self.last_pinged = now
            self.ping_counter += 1
            await self.send_frame(protocol.ping(self.ping_counter))

    async def send_frame(self, frame: dict[str, Any]) -> None:
        self.outbox.put(protocol.encode(frame))

    def _header(self, name: bytes) -> str:
        for key, value in self.scope.get("headers", []):
            if key == name:
                return str(value.decode("latin-1"))
        return ""

    def _client_address(self) -> str:
        client = self.scope.get("client")
        return str(client[0]) if client else ""
