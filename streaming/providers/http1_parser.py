"""An HTTP/1.1 response read from bytes, without I/O: the head, then the body un-chunked as it arrives.

The lean transport (http1.py) feeds it whatever a socket read gave; a streamed chat completion is a long
chunked body of small chunks, so the common path (a whole chunk in the buffer) is a find, a slice and a
delete. It knows the framings a server may use (RFC 9112 section 6): no body (HEAD, 1xx, 204, 304),
Content-Length, chunked (extensions and trailers skipped), or until the connection closes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CRLF = b"\r\n"
MAX_HEAD_BYTES = 64 * 1024  # httpcore's limit too; a response head is a few hundred bytes
MAX_LINE_BYTES = 4096  # a chunk-size or trailer line


class ProtocolError(Exception):
    """The server's bytes are not an HTTP/1.1 response this parser accepts."""


@dataclass
class Head:
    """Status line and headers of a response."""

    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    keep_alive: bool


@dataclass
class ResponseParser:
    """Feed it bytes; read `head`, take `body` pieces, and stop at `complete`."""

    method: bytes = b"POST"
    head: Head | None = None
    body: list[bytes] = field(default_factory=list)
    complete: bool = False
    _buffer: bytes = b""  # bytes not parsed yet (usually none: a read ends where a chunk does)
    _framing: str = ""  # "length", "chunked" or "close" once the head is read
    _remaining: int = 0  # bytes left of the body (length) or of the current chunk (chunked)
    _chunk_state: str = "size"  # chunked: "size", "data", "data-end" or "trailer"

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Parse what these bytes complete; raises ProtocolError on a malformed response."""
        buffer = self._buffer + bytes(data) if self._buffer else bytes(data)
        pos = 0
        if self.head is None:
            pos = self._read_head(buffer)
        if self.head is not None and not self.complete and pos < len(buffer):
            pos = self._read_body(buffer, pos)
        self._buffer = buffer[pos:] if pos < len(buffer) else b""
        if self.complete and self._buffer:
            raise ProtocolError("bytes after the end of the response")

    def eof(self) -> None:
        """The connection ended: complete if the body runs until close, else the response was cut."""
        if self.complete:
            return
        if self.head is not None and self._framing == "close":
            self.complete = True
            return
        raise ProtocolError("peer closed connection without sending complete message body")

    def _read_head(self, buffer: bytes) -> int:
        pos = 0
        while self.head is None:
            end = buffer.find(b"\r\n\r\n", pos)
            if end < 0:
                if len(buffer) - pos > MAX_HEAD_BYTES:
                    raise ProtocolError("response head too large")
                return pos
            head = _parse_head(buffer[pos:end])
            pos = end + 4
            if 100 <= head.status < 200:
                if head.status == 101:
                    raise ProtocolError("unexpected protocol switch")
                continue  # an interim response (100 Continue, 103 Early Hints): the real one follows
            self.head = head
            self._framing, self._remaining = _framing(head, self.method)
            self.complete = self._framing == "length" and self._remaining == 0
        return pos

    def _read_body(self, buffer: bytes, pos: int) -> int:
        if self._framing == "chunked":
            return self._read_chunks(buffer, pos)
        if self._framing == "length":
            take = min(self._remaining, len(buffer) - pos)
            self.body.append(buffer[pos : pos + take])
            self._remaining -= take
            self.complete = self._remaining == 0
            return pos + take
        self.body.append(buffer[pos:])
        return len(buffer)

    def _read_chunks(self, buffer: bytes, pos: int) -> int:
        """Chunks from `pos` on; returns where the unparsed bytes begin."""
        size, state = len(buffer), self._chunk_state
        try:
            while pos < size:
                if state == "data":
                    take = min(self._remaining, size - pos)
                    self.body.append(buffer[pos : pos + take])
                    pos += take
                    self._remaining -= take
                    if self._remaining:
                        return pos
                    state = "data-end"
                    continue
                end = buffer.find(CRLF, pos)
                if end < 0:
                    if size - pos > MAX_LINE_BYTES:
                        raise ProtocolError("chunk line too long")
                    return pos
                line, pos = buffer[pos:end], end + 2
                if state == "data-end":
                    if line:
                        raise ProtocolError("chunk data longer than its size")
                    state = "size"
                elif state == "size":
                    length = _chunk_size(line)
                    data_end = pos + length
                    if length and buffer[data_end : data_end + 2] == CRLF:  # the whole chunk is here: the usual case
                        self.body.append(buffer[pos:data_end])
                        pos = data_end + 2
                        continue
                    self._remaining = length
                    state = "data" if length else "trailer"
                elif not line:  # the blank line after the trailers ends the body
                    self.complete = True
                    return pos
            return pos
        finally:
            self._chunk_state = state


def _parse_head(raw: bytes) -> Head:
    status_line, *lines = raw.split(CRLF)
    version, _, rest = status_line.partition(b" ")
    code, _, reason = rest.partition(b" ")
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
        raise ProtocolError("malformed status line")
    headers = []
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
            raise ProtocolError("malformed header line")
        headers.append((name, value.strip(b" \t")))
    tokens = {t.strip().lower() for n, v in headers if n.lower() == b"connection" for t in v.split(b",")}
    keep_alive = b"close" not in tokens and (version == b"HTTP/1.1" or b"keep-alive" in tokens)
    return Head(int(code), reason, headers, keep_alive)


def _framing(head: Head, method: bytes) -> tuple[str, int]:
    if method == b"HEAD" or head.status in (204, 304):
        return "length", 0
    values: dict[bytes, bytes] = {}
    for name, value in head.headers:
        lowered = name.lower()
        if lowered in (b"transfer-encoding", b"content-length"):
            if lowered in values and values[lowered] != value:
                raise ProtocolError(f"conflicting {lowered.decode()} headers")
            values[lowered] = value
    if b"transfer-encoding" in values:
        codings = values[b"transfer-encoding"].lower().split(b",")
        return ("chunked", 0) if codings[-1].strip() == b"chunked" else ("close", 0)
    if b"content-length" in values:
        length = values[b"content-length"]
        if not length.isdigit():
            raise ProtocolError("malformed content-length")
        return "length", int(length)
    return "close", 0


def _chunk_size(line: bytes) -> int:
    size = line.split(b";", 1)[0].strip(b" \t") if b";" in line or b" " in line or b"\t" in line else line
    # int(x, 16) also takes a sign, "0x", "_" and spaces; only plain hex digits are a chunk size.
    if not size or len(size) > 16 or not size.isalnum() or b"x" in size or b"X" in size:
        raise ProtocolError("malformed chunk size")
    try:
        return int(size, 16)
    except ValueError:
        raise ProtocolError("malformed chunk size") from None
