"""The Daphne shim: autobahn formats nothing per frame once it is installed (the ASGI entry point installs it),
and a plain text frame goes to the socket at once (the end-to-end tests run every frame through it on Daphne)."""

from __future__ import annotations

import concurrent.futures
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


def test_install_twice_changes_nothing() -> None:
    daphne_compat.install()
    assert autobahn_protocol.hlval(3) == 3


class StubTransport:
    """What send_text_now reads and calls of Twisted's tcp.Server, over one end of a socket pair."""

    connected = True
    disconnecting = False
    _writeDisconnected = False
    dataBuffer = b""
    offset = 0
    _tempDataLen = 0

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


class StubProtocol:
    """An open autobahn WebSocket protocol as Daphne configures it (no compression, no fragmenting)."""

    SEND_STATE_GROUND = 0
    send_state = 0
    _perMessageCompress = None
    autoFragmentSize = 0
    trackedTimings = None
    logFrames = False
    logOctets = False
    maxMessagePayloadSize = 0

    def __init__(self, transport: StubTransport) -> None:
        self.transport = transport
        self.send_queue: deque[Any] = deque()


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One unmasked frame from the peer: (first byte, payload)."""

    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "the socket closed mid-frame"
            data += chunk
        return data

    first, second = exactly(2)
    assert not second & 0x80, "a server frame is never masked"
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", exactly(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", exactly(8))[0]
    return first, exactly(length)


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_a_text_message_goes_to_the_socket_as_one_final_text_frame(size: int) -> None:
    """Every length encoding of RFC 6455 section 5.2, read back by the peer; nothing left for Twisted."""
    ours, peer = socket.socketpair()
    with ours, peer:
        peer.settimeout(5)
        transport = StubTransport(ours)
        text = "é" * (size // 2) + "x" * (size % 2)
        reader = concurrent.futures.ThreadPoolExecutor(1).submit(read_frame, peer)  # a big frame fills the buffer
        assert daphne_compat.send_text_now(StubProtocol(transport), StubTransport, text)
        if transport.written:  # what the kernel did not take at once: Twisted's write sends it later
            ours.sendall(b"".join(transport.written))
        assert reader.result(timeout=5) == (0x81, text.encode())


def test_what_the_kernel_does_not_take_goes_to_twisted_in_order() -> None:
    """A full socket buffer: the frame's rest is handed to Twisted's write, and the next message waits behind it."""
    ours, peer = socket.socketpair()
    with ours, peer:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        ours.setblocking(False)
        transport = StubTransport(ours)
        protocol = StubProtocol(transport)
        assert daphne_compat.send_text_now(protocol, StubTransport, "x" * 500_000)
        assert transport.written, "a 500 KB frame fits no 4 KB buffer"
        transport._tempDataLen = sum(map(len, transport.written))  # as Twisted counts what it holds
        assert not daphne_compat.send_text_now(protocol, StubTransport, "next")  # behind the rest, autobahn's way


@pytest.mark.parametrize(
    "change",
    [
        {"send_queue": deque([b"queued"])},
        {"_perMessageCompress": object()},
        {"autoFragmentSize": 100},
        {"send_state": 1},
        {"maxMessagePayloadSize": 3},
    ],
    ids=["queued", "compressed", "fragmented", "mid-frame", "over-limit"],
)
def test_anything_but_a_plain_frame_goes_autobahns_way(change: dict[str, Any]) -> None:
    ours, peer = socket.socketpair()
    with ours, peer:
        protocol = StubProtocol(StubTransport(ours))
        for name, value in change.items():
            setattr(protocol, name, value)
        assert not daphne_compat.send_text_now(protocol, StubTransport, "text")
        assert not daphne_compat.send_text_now(StubProtocol(StubTransport(ours)), object, "text")  # TLS, others
