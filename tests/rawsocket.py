"""A WebSocket client on a plain TCP socket with a tiny receive buffer: it can stop reading, as a stuck client does.

Library clients read eagerly into their own buffers; this one only reads when the test asks it to.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from typing import Any

import orjson

OP_TEXT, OP_CLOSE = 0x1, 0x8
RECEIVE_BUFFER = 4096


def client_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """A masked frame, as RFC 6455 requires of clients."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    return header + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


def server_frames(data: bytes | bytearray, at: int = 0) -> tuple[list[tuple[int, bytes]], int]:
    """(opcode, payload) of every whole unmasked frame in `data` from `at`, and where the first partial one starts."""
    frames = []
    while (header := _payload_at(data, at)) is not None and header[0] + header[1] <= len(data):
        start, size = header
        frames.append((data[at] & 0x0F, bytes(data[start : start + size])))
        at = start + size
    return frames, at


def _payload_at(data: bytes | bytearray, at: int) -> tuple[int, int] | None:
    """(payload start, payload size) of the frame at `at`; None while its header is incomplete."""
    if at + 2 > len(data):
        return None
    size, start = data[at + 1] & 0x7F, at + 2
    width = {126: 2, 127: 8}.get(size, 0)
    if start + width > len(data):
        return None
    if width:
        size = int.from_bytes(data[start : start + width], "big")
    return start + width, size


def close_code(payload: bytes) -> int:
    return int.from_bytes(payload[:2], "big")


class StalledClient:
    """Handshakes, sends frames, and reads nothing until read_to_end()."""

    def __init__(self, sock: socket.socket, early: bytes) -> None:
        self.sock = sock
        self.early = early  # bytes that came with the handshake answer

    @classmethod
    async def connect(cls, port: int, path: str) -> StalledClient:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)  # before connect: sets the window
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await loop.sock_sendall(sock, request.encode())
        answer = b""
        async with asyncio.timeout(5):
            while b"\r\n\r\n" not in answer:
                chunk = await loop.sock_recv(sock, 1024)
                assert chunk, f"connection closed during the handshake: {answer!r}"
                answer += chunk
        head, _, early = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(sock, early)

    async def send_json(self, frame: dict[str, Any]) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, client_frame(orjson.dumps(frame)))

    async def read_to_end(self, timeout: float) -> tuple[list[tuple[int, bytes]], str]:
        """Read again, answering a close frame as a client does, until the connection ends:
        (every whole frame received, "eof" or "reset")."""
        loop = asyncio.get_running_loop()
        received, frames, parsed = bytearray(self.early), [], 0
        async with asyncio.timeout(timeout):
            while True:
                new, parsed = server_frames(received, parsed)
                frames += new
                if any(opcode == OP_CLOSE for opcode, _ in new):
                    await loop.sock_sendall(self.sock, client_frame(b"", OP_CLOSE))
                try:
                    chunk = await loop.sock_recv(self.sock, 1 << 16)
                except ConnectionResetError:
                    return frames, "reset"
                if not chunk:
                    return frames, "eof"
                received += chunk

    def close(self) -> None:
        self.sock.close()
