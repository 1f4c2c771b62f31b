"""The WebSocket consumer: authenticate, parse -> dispatch -> hand off; no business logic here."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import timezone

from accounts.credentials import Credential
from accounts.middleware import SocketAuth, authenticate
from creatornexus import logcontext
from streaming import channels_compat, metrics, protocol, services
from streaming.outbox import Outbox
from streaming.protocol import (
    AUTH_CLOSES,
    Auth,
    AuthCause,
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
from streaming.store.quota import Lease, LeaseKind

logger = logging.getLogger(__name__)


class StreamConsumer(AsyncWebsocketConsumer):
    """One per socket. Generations run in registry-owned tasks, so every frame is answered at once."""

    # No channel per socket: the registry holds one per process and fans wake-ups out to watches here.
    # get_channel_layer() documents None for an alias that is not configured.
    channel_layer_alias = "no-per-socket-channel"
    registry: ProcessRegistry | None = None
    sessions: SessionsOfConnection | None = None
    connection_id: str = ""
    user_id: int = 0
    outbox: Outbox
    # Set once this socket is being closed (drain, auth ended): nothing is sent after the close frame.
    leaving: bool = False
    # The claims of the access token this socket lives on (accounts.middleware); an auth frame replaces it.
    credential: Credential | None = None
    gone_logged: bool = False  # disconnect() has logged the connection row
    gone: asyncio.Event | None = None  # made by leave(), which waits for it; set by disconnect()
    # The handshake was refused (HTTP 403 while draining): there was no socket, so no close code to count.
    refused: bool = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Every frame leaves through the outbox, which is closed when this consumer ends.

        This task is the socket's: what it logs, and every task it starts (the writer, generations), names the
        connection and its user. It reads the socket itself instead of through Channels' AsyncConsumer.__call__,
        which holds a task and a future per socket to read from a channel layer too (streaming/channels_compat.py).
        """
        self.connection_id = str(uuid.uuid4())
        user = scope.get("user")
        logcontext.bind_connection(self.connection_id, user.pk if user is not None and user.is_authenticated else None)
        self.outbox = Outbox(send, settings.STREAMING["MAX_BUFFERED_BYTES"])
        channels_compat.adopt(self, scope, send)
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
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
        if not self.gone_logged:
            self.gone = asyncio.Event()  # only now: an idle socket holds no event (issue 11)
            await self.gone.wait()

    async def connect(self) -> None:
        registry = await get_registry()
        if registry.draining:
            # Refused before accept (HTTP 403): the load balancer takes the client to another process.
            self.refused = True
            await self.close()
            return
        user = self.scope.get("user")
        subprotocol = self.scope.get("cn_subprotocol")
        self.credential = self.scope.get("cn_credential")
        if user is None or not user.is_authenticated or self.credential is None:
            # Accept, then close at once: browsers only see close codes (4401) on an opened socket.
            await self.accept(subprotocol)
            await self.close_with(CloseCode.UNAUTHORIZED)
            return
        if not await registry.leases.claim(Lease(LeaseKind.SOCKETS, user.pk, self.connection_id)):
            # The user's sockets over every process are at WS_MAX_CONNECTIONS_PER_USER: this one is refused.
            await self.accept(subprotocol)
            await self.close_with(CloseCode.TOO_MANY_CONNECTIONS)
            return
        self.registry = registry
        self.user_id = user.pk
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
        await self.accept(subprotocol)
        self.registry.connections.add(self)
        metrics.CONNECTIONS_OPENED.inc()
        logger.info("connection opened from %s", self._client_address())
        established = protocol.connection_established(
            self.connection_id, user.pk, user.get_username(), token_expires_at=self.credential.expires_at
        )
        await self.send_frame(established)

    async def disconnect(self, code: int) -> None:
        if not self.refused:
            metrics.CONNECTIONS_CLOSED.labels(str(code)).inc()
        if self.registry is None or self.sessions is None:
            return
        logger.info("connection closed with %s", code)
        self.registry.connections.discard(self)
        await self.sessions.close()
        self.registry.log_close(services.ConnectionClosed(self.connection_id, code, timezone.now()))
        await self.registry.leases.release(Lease(LeaseKind.SOCKETS, self.user_id, self.connection_id))
        self.gone_logged = True
        if self.gone is not None:
            self.gone.set()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.sessions is None or self.leaving:
            return
        self.last_received = time.monotonic()
        if self.credential is None or self.credential.expired(time.time()):
            # Expired is expired: not one more frame is handled, even if the tick has not closed it yet.
            await self.end_auth(AuthCause.TOKEN_EXPIRED)
            return
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
                await self.send_error(exc.code, exc.message, exc.request_id, exc.details)
        except Exception:
            logger.exception("frame handling failed on connection %s", self.connection_id)
            await self.send_error(ErrorCode.INTERNAL_ERROR, "The server failed to handle that frame.")

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
            case Auth():
                await self.handle_auth(frame)

    async def handle_auth(self, frame: Auth) -> None:
        """A fresh access token of the same user extends the socket's life; any other token ends it (4401)."""
        assert self.credential is not None
        outcome = await authenticate(frame.token)
        if not isinstance(outcome, SocketAuth):
            await self.end_auth(AuthCause.AUTH_TOKEN_EXPIRED if outcome is AuthCause.TOKEN_EXPIRED else outcome)
        elif outcome.credential.user_id != self.credential.user_id:
            await self.end_auth(AuthCause.OTHER_USER)
        else:
            self.credential = outcome.credential
            await self.send_frame(protocol.auth_ok(outcome.credential.expires_at))

    async def end_auth(self, cause: AuthCause) -> None:
        """Authentication no longer holds: stop delivering, close with the cause's code and reason. The generations
        go on (the registry owns them): the client signs in or refreshes again, reconnects and resumes."""
        if self.leaving:
            return
        self.leaving = True
        logger.info("closing connection %s: %s", self.connection_id, cause)
        if self.registry is not None:
            self.registry.connections.discard(self)
        if self.sessions is not None:
            await self.sessions.close()
        code, reason = AUTH_CLOSES[cause]
        self.outbox.close(code, reason)

    async def tick(self, now: float) -> None:
        """Called by the registry every second: token expiry, server pings and the idle timeout."""
        knobs = settings.STREAMING
        if self.leaving:
            return
        if self.credential is not None and self.credential.expired(time.time()):
            await self.end_auth(AuthCause.TOKEN_EXPIRED)
        elif now - self.last_received >= knobs["CONNECTION_TIMEOUT_S"]:
            if self.registry is not None:
                self.registry.connections.discard(self)
            await self.close_with(CloseCode.IDLE_TIMEOUT)
        elif now - self.last_pinged >= knobs["HEARTBEAT_INTERVAL_S"]:
            self.last_pinged = now
            self.ping_counter += 1
            await self.send_frame(protocol.ping(self.ping_counter))

    async def send_error(
        self, code: ErrorCode, message: str, request_id: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        """An error frame (the connection stays open), counted by code."""
        metrics.ERROR_FRAMES.labels(code.value).inc()
        await self.send_frame(protocol.error(code, message, request_id, details))

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
