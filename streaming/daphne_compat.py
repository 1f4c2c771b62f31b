"""Daphne's WebSocket protocol, taught what ASGI allows and Daphne 4.2 does not do.

- Close codes 1001 and 1012: autobahn's `sendClose` refuses every code but 1000 and 3000-4999, although RFC 6455
  lets a server send both; a draining server must say "service restart" (1012) so clients reconnect at once.
- Close reasons: Daphne drops the `reason` of `websocket.close`; ours tell the client why (docs/protocol.md).
- Bounded memory: Daphne never applies backpressure, so a client that stops reading makes Twisted buffer every
  frame sent to it (the consumer's outbox hands frames on at once under Daphne). Past `WS_MAX_BUFFERED_BYTES` of
  unread bytes the socket is closed with 4413 and the buffer is dropped with the connection (autobahn aborts it
  when the close handshake does not finish, after 1 s). Every later send raises autobahn's `Disconnected`; the
  outbox stops writing on the first one and the consumer's disconnect follows the abort.
- No log formatting per frame or handshake: autobahn's sendData colours its debug message's arguments
  (click.style, via hltype/hlval) for every frame it writes, whether debug logging is on or not: 5 % of the
  event loop's samples with 400 streams; and each handshake pformats its ~30 settings for a debug line
  (~185 µs). The arguments are handed to the logger as they are instead (formatted only if emitted).
- A frame goes to the socket at once: autobahn frames each message through sendMessage, sendFrame and sendData,
  and Twisted's `write` only buffers it and registers the socket for writing (an epoll_ctl), then writes it on
  the loop's next turn and unregisters (another). With nothing queued ahead of it, a text message on a plain
  TCP socket (no compression, no fragmenting) is framed here and sent straight away; what the kernel does not
  take is handed to Twisted's `write`, so order, buffering and the 4413 limit stay Twisted's (issue 11:
  that path was ~20 % of the loop's samples at 1,000 streams, `bench/RESULTS.md`).
- Freed by reference counting: each closed connection left two reference cycles that only a full collection
  frees (rare once the young generation's threshold is raised): autobahn resolves `is_closed` with the protocol
  itself (protocol -> Deferred.result -> protocol), and the HTTP request that was upgraded stays in its orphaned
  channel's `requests` (request.channel -> HTTPChannel.requests -> request). Both are cut once Daphne's server
  has forgotten the connection (its application_checker drops it from `connections`); nothing uses them then.

`install()` is called by the ASGI entry point; it patches nothing when Daphne is not installed.
"""

from __future__ import annotations

import logging
from pprint import pformat
from typing import Any

from django.conf import settings

from streaming.protocol import CLOSE_REASONS, CloseCode
from streaming.ws_frame import frame_header

logger = logging.getLogger(__name__)

# What RFC 6455 lets an endpoint send (1004-1006 and 1015 are reserved for the peer's own report).
_SENDABLE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


def sendable(code: int) -> bool:
    return code in _SENDABLE or 3000 <= code <= 4999


def buffered_bytes(transport: Any) -> int:
    """Bytes Twisted holds for this socket that the kernel has not taken yet (the client is not reading)."""
    data = getattr(transport, "dataBuffer", b"")
    return len(data) - int(getattr(transport, "offset", 0)) + int(getattr(transport, "_tempDataLen", 0))


def send_text_now(protocol: Any, server_type: Any, content: str) -> bool:
    """Send one text message as a frame straight to the socket; False when autobahn's own path must take it
    (TLS or another transport, compression, fragmenting, masking, frames queued or buffered ahead of it, a
    payload limit).
    """
    transport = protocol.transport
    if (
        type(transport) is not server_type
        or protocol.send_queue
        or protocol.send_state != protocol.SEND_STATE_GROUND
        or protocol._perMessageCompress is not None
        or protocol.autoFragmentSize
        or protocol.maskServerFrames
        or protocol.trackedTimings
        or protocol.logFrames
        or protocol.logOctets
    ):
        return False
    try:
        # Read without defaults: should Twisted rename what it holds unsent, frames take autobahn's path
        # rather than overtake bytes it still holds.
        if (
            transport.TLS  # startTLS keeps the transport's type
            or not transport.connected
            or transport.disconnecting
            or transport._writeDisconnected
            or transport._tempDataLen
            or len(transport.dataBuffer) > transport.offset
        ):
            return False
    except AttributeError:
        return False
    payload = content.encode()
    if 0 < protocol.maxMessagePayloadSize < len(payload):
        return False  # autobahn refuses it the way it always has
    frame = frame_header(len(payload)) + payload
    try:
        sent = transport.socket.send(frame)
    except (BlockingIOError, InterruptedError):
        sent = 0
    except OSError:
        sent = 0  # Twisted's write below meets the same error and closes the connection its usual way
    if sent < len(frame):
        transport.write(frame[sent:])  # the kernel's buffer is full: Twisted holds the rest, in order
    return True


def _reason_bytes(reason: str | None) -> bytes | None:
    if not reason:
        return None
    return reason.encode()[:123]  # a close frame's payload is at most 125 bytes, 2 of them the code


def _as_is(value: Any, *_args: Any, **_kwargs: Any) -> Any:
    """autobahn's hltype/hlval without the colours: the value itself, for a log line that is rarely emitted."""
    return value


class _Pformat:
    """autobahn's pformat, formatted only when its log line is: every connection's handshake logs its ~30
    settings at debug level through pformat (~185 µs, a quarter of a handshake's CPU in a storm), whether
    debug logging is on or not."""

    __slots__ = ("value",)

    def __init__(self, value: Any, *_args: Any, **_kwargs: Any) -> None:
        self.value = value

    def __str__(self) -> str:
        return pformat(self.value)

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return format(pformat(self.value), spec)


def _release(protocol: Any) -> None:
    """Break the cycles a finished connection or upgrade request is in, once nothing can use them any more."""
    channel = getattr(protocol, "channel", None)
    if channel is not None and getattr(protocol, "transport", True) is None:
        # An upgraded request: its channel gave the socket to the WebSocket protocol and never reads again.
        # What Twisted does for a finished request (requestDone, then `del channel`), without a response.
        if protocol in channel.requests:
            channel.requests.remove(protocol)
        protocol.channel = None
    is_closed = getattr(protocol, "is_closed", None)
    if is_closed is not None and is_closed.called:
        from twisted.internet import defer

        # Fired with the protocol itself. It has fired whenever Daphne forgets a socket (onClose runs after it;
        # a refused handshake fires it in dropConnection, before serverReject marks it disconnected), so no
        # resolve can come later; a late reader still learns the socket is closed.
        protocol.is_closed = defer.succeed(None)


def install() -> None:
    try:
        from autobahn.websocket import protocol as autobahn_protocol
        from daphne.server import Server
        from daphne.ws_protocol import WebSocketProtocol
        from twisted.internet.tcp import Server as TCPServer
    except ImportError:  # pragma: no cover - daphne is a dependency; another server may run without it
        return
    if getattr(WebSocketProtocol, "_creatornexus_patched", False):
        return
    # setattr: the patched names are module globals that autobahn's own annotations type narrowly.
    setattr(autobahn_protocol, "hltype", _as_is)  # noqa: B010
    setattr(autobahn_protocol, "hlval", _as_is)  # noqa: B010
    setattr(autobahn_protocol, "pformat", _Pformat)  # noqa: B010
    original_handle_reply = WebSocketProtocol.handle_reply
    original_send = WebSocketProtocol.serverSend
    original_checker = Server.application_checker

    def handle_reply(self: Any, message: dict[str, Any]) -> None:
        if message.get("type") == "websocket.close" and self.state != self.STATE_CONNECTING:
            self.serverClose(code=message.get("code"), reason=message.get("reason"))
            return
        original_handle_reply(self, message)

    def server_close(self: Any, code: int | None = None, reason: str | None = None) -> None:
        code = 1000 if code is None else int(code)
        if not sendable(code):
            logger.warning("close code %s cannot be sent; closing with 1011", code)
            code, reason = 1011, None
        self.sendCloseFrame(code=code, reasonUtf8=_reason_bytes(reason), isReply=False)

    def server_send(self: Any, content: Any, binary: bool = False) -> None:
        if self.state == self.STATE_OPEN and self.transport is not None:
            if buffered_bytes(self.transport) > settings.STREAMING["MAX_BUFFERED_BYTES"]:
                logger.info("closing a socket that stopped reading (%d bytes unread)", buffered_bytes(self.transport))
                server_close(self, int(CloseCode.TOO_SLOW), CLOSE_REASONS[CloseCode.TOO_SLOW])
                return
            if not binary and send_text_now(self, TCPServer, content):
                return
        original_send(self, content, binary)

    def application_checker(self: Any) -> None:
        """Daphne's reaper, once a second; what it dropped from `connections` is released after it."""
        known = tuple(self.connections)
        original_checker(self)
        for protocol in known:
            if protocol not in self.connections:
                _release(protocol)

    Server.application_checker = application_checker
    WebSocketProtocol.handle_reply = handle_reply
    WebSocketProtocol.serverClose = server_close
    WebSocketProtocol.serverSend = server_send
    WebSocketProtocol._creatornexus_patched = True
