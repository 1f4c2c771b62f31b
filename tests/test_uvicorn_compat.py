"""The uvicorn shim: a text frame is written at once, byte for byte what websockets would have written, and
everything else takes uvicorn's own path (the end-to-end tests on uvicorn send every frame through it)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import CLOSING, OPEN
from websockets.server import ServerProtocol

import creatornexus.asgi  # noqa: F401 - installs the shim, as every server process does
from streaming import uvicorn_compat


class StubTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closing


class StubProtocol:
    """What send_text_now reads of uvicorn's WebSocketsSansIOProtocol, around a real websockets connection."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.disconnected = False
        self.handshake_complete = True
        self.close_sent = False
        self.initial_response: Any = None
        self.conn = ServerProtocol()
        self.conn.state = OPEN
        self.transport = StubTransport()


def websockets_frame(text: str) -> bytes:
    """What uvicorn's own path writes for this text."""
    conn = ServerProtocol()
    conn.state = OPEN
    conn.send_text(text.encode())
    return b"".join(conn.data_to_send())


def send(protocol: StubProtocol, message: dict[str, Any]) -> bool:
    return uvicorn_compat.send_text_now(protocol, message, OPEN)


def test_installed_by_the_entry_point_once() -> None:
    patched = WebSocketsSansIOProtocol.send
    assert getattr(patched, uvicorn_compat._PATCHED)
    uvicorn_compat.install()
    assert WebSocketsSansIOProtocol.send is patched


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 300_000])
def test_a_text_frame_is_what_websockets_would_write(length: int) -> None:
    text = ("é" * length)[: max(0, length - 1)] + "x" if length else ""
    protocol = StubProtocol()
    assert send(protocol, {"type": "websocket.send", "text": text})
    assert protocol.transport.written == [websockets_frame(text)]
    assert protocol.conn.data_to_send() == []  # nothing left in websockets' queue either


def closing(p: StubProtocol) -> None:
    p.transport.closing = True


def paused(p: StubProtocol) -> None:
    p.writable.clear()


def fragmenting(p: StubProtocol) -> None:
    p.conn.expect_continuation_frame = True


def with_extension(p: StubProtocol) -> None:
    p.conn.extensions = [object()]  # type: ignore[list-item]


def queued(p: StubProtocol) -> None:
    p.conn.writes.append(b"ahead")


GUARDS = {
    "writing-paused": paused,
    "disconnected": lambda p: setattr(p, "disconnected", True),
    "before-the-handshake": lambda p: setattr(p, "handshake_complete", False),
    "close-sent": lambda p: setattr(p, "close_sent", True),
    "http-response": lambda p: setattr(p, "initial_response", (403, [], b"")),
    "conn-closing": lambda p: setattr(p.conn, "state", CLOSING),
    "fragmented-message": fragmenting,
    "extension": with_extension,
    "bytes-queued-in-websockets": queued,
    "debug-logging": lambda p: setattr(p.conn, "debug", True),
    "transport-closing": closing,
}


@pytest.mark.parametrize("guard", list(GUARDS), ids=list(GUARDS))
def test_anything_but_a_plain_open_socket_takes_uvicorns_path(guard: str) -> None:
    protocol = StubProtocol()
    GUARDS[guard](protocol)
    assert not send(protocol, {"type": "websocket.send", "text": "hello"})
    assert protocol.transport.written == []


@pytest.mark.parametrize(
    "message",
    [{"type": "websocket.send", "bytes": b"x"}, {"type": "websocket.send", "bytes": b"x", "text": "x"}],
    ids=["bytes", "bytes-and-text"],
)
def test_binary_messages_take_uvicorns_path(message: dict[str, Any]) -> None:
    protocol = StubProtocol()
    assert not send(protocol, message)
    assert protocol.transport.written == []
