"""A server's WebSocket text frame header, for the servers' direct sends (daphne_compat, uvicorn_compat)."""

from __future__ import annotations

import struct


def frame_header(length: int) -> bytes:
    """An unmasked, final text frame's header for a payload of `length` bytes (RFC 6455 section 5.2)."""
    if length < 126:
        return struct.pack("!BB", 0x81, length)
    if length < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, length)
    return struct.pack("!BBQ", 0x81, 127, length)
