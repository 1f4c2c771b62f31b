"""The Daphne shim: autobahn formats nothing per frame once it is installed (the ASGI entry point installs it),
and a plain text frame goes to the socket at once (the end-to-end tests run every frame through it on Daphne)."""

from __future__ import annotations

import concurrent.futures
import pprint
import socket
import struct
from collections import deque
from typing import Any

import pytest
from autobahn.websocket import protocol as autobahn_protocol

import creatornexus.asgi  # noqa: F401 - installs the shim, as every server process does
from streaming import daphne_compat


def test_frames_are_sent_without_colouring_log_arguments() -> None:
    """sendData's debug-log arguments are passed as they are: no click.style call per frame written."""
    marker = object()
    assert autobahn_protocol.hltype(marker) is marker
    assert autobahn_protocol.hlval(marker) is marker


def test_handshakes_format_their_settings_only_if_logged() -> None:
    """The per-connection debug line's pformat is deferred to formatting: the same text when emitted."""
    settings = [("autoPingInterval", 0, "WebSocketServerFactory"), ("maxFramePayloadSize", 0, "Factory")]

    class Loud:
        def __str__(self) -> str:
            raise AssertionError("formatted although not logged")

    autobahn_protocol.pformat([Loud()])  # built, never formatted: nothing raised
    deferred = autobahn_protocol.pformat(settings)
    line = "\n{attrs}"  # autobahn's debug line, formatted as its logger would
    assert line.format(attrs=deferred) == "\n" + pprint.pformat(settings)
    assert str(deferred) == repr(deferred) == pprint.pformat(settings)


def test_install_twice_changes_nothing() -> None:
    daphne_compat.install()
    assert autobahn_protocol.hlval(3) == 3


class StubTransport:
    """What send_text_now reads and calls of Twisted's tcp.Server, over one end of a non-blocking socket pair:
    `write` keeps what it is given, as Twisted's buffer would."""

    TLS = False
    connected = True
    disconnecting = False
    _writeDisconnected = False
    dataBuffer = b""
    offset = 0
    _tempDataLen = 0

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)  # as Twisted's sockets are
        self.socket = sock
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


class StubProtocol:
    """An open autobahn WebSocket protocol as Daphne configures it (no compression, fragmenting or masking)."""

    SEND_STATE_GROUND = 0
    send_state = 0
    _perMessageCompress = None
    autoFragmentSize = 0
    maskServerFrames = False
    trackedTimings = None
    logFrames = False
    logOctets = False
    maxMessagePayloadSize = 0

    def __init__(self, transport: StubTransport) -> None:
        self.transport = transport
        self.send_queue: deque[Any] = deque()


def read_all(sock: socket.socket, size: int) -> bytes:
    """Exactly `size` bytes from a blocking socket."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "the socket closed early"
        data += chunk
    return data


def frame(text: str) -> bytes:
    """The frame RFC 6455 section 5.2 gives for an unmasked, final text message."""
    payload = text.encode()
    if len(payload) < 126:
        return bytes([0x81, len(payload)]) + payload
    if len(payload) < 1 << 16:
        return bytes([0x81, 126]) + struct.pack("!H", len(payload)) + payload
    return bytes([0x81, 127]) + struct.pack("!Q", len(payload)) + payload


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 500_000])
def test_a_text_message_reaches_the_peer_as_its_frame(size: int) -> None:
    """Every length encoding; what the kernel does not take at once goes to Twisted's write, right after the part
    it took: the peer reads the exact frame."""
    ours, peer = socket.socketpair()
    with ours, peer:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        peer.settimeout(5)
        transport = StubTransport(ours)
        text = "é" * (size // 2) + "x" * (size % 2)
        expected = frame(text)
        reader = concurrent.futures.ThreadPoolExecutor(1).submit(read_all, peer, len(expected))
        assert daphne_compat.send_text_now(StubProtocol(transport), StubTransport, text)
        if size >= 65536:
            assert transport.written, "a frame this big does not fit the socket's buffer at once"
        ours.setblocking(True)
        ours.sendall(b"".join(transport.written))  # what Twisted's doWrite does with its buffer
        assert reader.result(timeout=5) == expected


def test_a_broken_connection_hands_the_frame_to_twisted() -> None:
    """The peer is gone (EPIPE): the whole frame goes to Twisted's write, which meets the error and closes."""
    ours, peer = socket.socketpair()
    peer.close()
    with ours:
        transport = StubTransport(ours)
        assert daphne_compat.send_text_now(StubProtocol(transport), StubTransport, "gone")
        assert transport.written == [frame("gone")]


@pytest.mark.parametrize(
    ("owner", "name", "value"),
    [
        ("protocol", "send_queue", deque([b"queued"])),
        ("protocol", "_perMessageCompress", object()),
        ("protocol", "autoFragmentSize", 100),
        ("protocol", "send_state", 1),
        ("protocol", "maskServerFrames", True),
        ("protocol", "trackedTimings", object()),
        ("protocol", "logFrames", True),
        ("protocol", "logOctets", True),
        ("protocol", "maxMessagePayloadSize", 3),
        ("transport", "TLS", True),
        ("transport", "connected", False),
        ("transport", "disconnecting", True),
        ("transport", "_writeDisconnected", True),
        ("transport", "_tempDataLen", 5),
        ("transport", "dataBuffer", b"held"),
    ],
)
def test_anything_but_a_plain_frame_on_an_idle_socket_goes_autobahns_way(owner: str, name: str, value: Any) -> None:
    """Compression, fragmenting, masking, logging, a payload limit, TLS, a closing socket, bytes held ahead: the
    frame is left to autobahn and Twisted (False), and nothing is written."""
    ours, peer = socket.socketpair()
    with ours, peer:
        transport = StubTransport(ours)
        protocol = StubProtocol(transport)
        setattr(protocol if owner == "protocol" else transport, name, value)
        assert not daphne_compat.send_text_now(protocol, StubTransport, "text")
        assert transport.written == []
        peer.setblocking(False)
        with pytest.raises(BlockingIOError):
            peer.recv(1)


def test_another_transport_type_goes_autobahns_way() -> None:
    """Only Twisted's plain TCP server transport is written to directly (TLS wraps it in another type)."""
    ours, peer = socket.socketpair()
    with ours, peer:
        assert not daphne_compat.send_text_now(StubProtocol(StubTransport(ours)), object, "text")


def test_what_twisted_holds_unsent_is_where_it_is_read() -> None:
    """Twisted's own write buffers where send_text_now and the 4413 check look (without those fields frames take
    autobahn's path; with them renamed, a direct send could overtake bytes Twisted still holds)."""
    from twisted.internet import abstract, tcp

    class Reactor:  # what FileDescriptor.write asks of its reactor
        def addWriter(self, _descriptor: object) -> None:
            pass

    held = abstract.FileDescriptor(reactor=Reactor())  # type: ignore[arg-type]
    held.connected = True
    held.write(b"frame")
    assert daphne_compat.buffered_bytes(held) == 5
    assert (held._tempDataLen, tcp.Server.TLS, tcp.Server.dataBuffer, tcp.Server.offset) == (5, False, b"", 0)
