"""Server-sent events from raw bytes: the `data` of each event, without an object per line.

The OpenAI provider reads its stream through this instead of the SDK's decoder (a `ServerSentEvent` and a str
per line, then a pydantic model per chunk). It follows the event-stream rules that a chat-completions stream
can use (https://html.spec.whatwg.org/multipage/server-sent-events.html): lines end in LF, CRLF or CR, a blank
line ends an event, `data:` lines join with LF (one leading space dropped), comments (`:`) and the other fields
are skipped, and an event without data is no event. The bytes may be cut anywhere, a line ending included.
"""

from __future__ import annotations

LF = b"\n"
CR = b"\r"
# A chat-completions event is well under 2 KB; one that grows past this without ending is a broken stream,
# and holding it would let an upstream fill our memory.
MAX_EVENT_BYTES = 1 << 20


class SSEError(ValueError):
    """The bytes are not an event stream this decoder will hold."""


class SSEDecoder:
    """Feed it the body as it comes; it returns the data of every event the bytes completed, in order."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        """The data of each event completed by these bytes (often exactly one)."""
        buffer = self._buffer + data if self._buffer else data
        if CR in buffer:
            buffer = _normalized(buffer)
        end = buffer.rfind(b"\n\n")
        if end < 0:
            if len(buffer) > MAX_EVENT_BYTES:
                raise SSEError(f"an event grew past {MAX_EVENT_BYTES} bytes without ending")
            self._buffer = buffer
            return []
        self._buffer = buffer[end + 2 :]
        events = []
        for block in buffer[:end].split(b"\n\n"):
            if block.startswith(b"data: ") and LF not in block:
                events.append(block[6:])  # the usual shape: one data line
            elif block:
                data_lines = _data_lines(block)
                if data_lines is not None:
                    events.append(data_lines)
        return events

    def pending(self) -> bool:
        """Whether bytes of an unfinished event are held (a stream that ends here was cut)."""
        return bool(self._buffer.strip(b"\n"))


def _normalized(buffer: bytes) -> bytes:
    """CRLF and CR as LF; a CR at the very end is kept as CR, since an LF may follow in the next bytes."""
    tail = b""
    if buffer.endswith(CR):
        buffer, tail = buffer[:-1], CR
    return buffer.replace(b"\r\n", LF).replace(CR, LF) + tail


def _data_lines(block: bytes) -> bytes | None:
    """The joined `data` field of one event, or None when it has none (comments, `event:`, `id:`, `retry:`)."""
    values = []
    for line in block.split(LF):
        name, colon, value = line.partition(b":")
        if name != b"data":
            continue  # a comment (empty name), another field, or a line of garbage: ignored, as the spec says
        if colon and value.startswith(b" "):
            value = value[1:]
        values.append(value)
    return LF.join(values) if values else None
