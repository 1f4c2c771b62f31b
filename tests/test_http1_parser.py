"""The lean transport's response parser: heads and bodies from bytes cut anywhere, bad responses refused."""

from __future__ import annotations

import pytest

from streaming.providers.http1_parser import MAX_HEAD_BYTES, ProtocolError, ResponseParser

SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def parse(raw: bytes, size: int, method: bytes = b"POST", *, eof: bool = False) -> ResponseParser:
    """The parser after `raw` was fed `size` bytes at a time (and the connection ended, if `eof`)."""
    parser = ResponseParser(method)
    body = []
    for start in range(0, len(raw), size):
        parser.feed(raw[start : start + size])
        body += parser.body
        parser.body = []
    if eof:
        parser.eof()
        body += parser.body
    parser.body = [b"".join(body)]
    return parser


@pytest.mark.parametrize(
    ("raw", "body", "keep_alive"),
    [
        (SSE_HEAD + b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world", True),
        (SSE_HEAD + b"5;ext=1\r\nhello\r\n0\r\ntrailer: x\r\n\r\n", b"hello", True),
        (SSE_HEAD + b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789", True),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", b"hello", True),
        (b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}", b"{}", False),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", b"ok", True),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b"", True),
        (b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok", b"ok", False),
    ],
    ids=["chunked", "chunk-extension-and-trailer", "hex-size", "content-length", "close", "interim-100", "204", "1.0"],
)
@pytest.mark.parametrize("size", [1, 3, 10_000])
def test_complete_responses(raw: bytes, body: bytes, keep_alive: bool, size: int) -> None:
    """Whole or cut into 1- or 3-byte pieces: the same head, body and end."""
    parser = parse(raw, size)
    assert parser.complete
    assert parser.head is not None and parser.head.keep_alive is keep_alive
    assert parser.body == [body]


def test_head_fields() -> None:
    """Status, reason and headers as sent (names as they came, values trimmed)."""
    parser = parse(b"HTTP/1.1 404 Not Found\r\nX-Request-Id:  req_1 \r\ncontent-length: 0\r\n\r\n", 7)
    assert parser.head is not None
    assert (parser.head.status, parser.head.reason) == (404, b"Not Found")
    assert parser.head.headers == [(b"X-Request-Id", b"req_1"), (b"content-length", b"0")]


def test_body_until_close_ends_with_the_connection() -> None:
    """Neither length nor chunked: the body runs until the server closes, and is then complete."""
    parser = parse(b"HTTP/1.1 200 OK\r\n\r\ndata: x\n\n", 4, eof=True)
    assert parser.complete and parser.body == [b"data: x\n\n"]
    assert parser.head is not None


@pytest.mark.parametrize(
    "raw",
    [
        SSE_HEAD + b"5\r\nhel",  # cut inside a chunk
        SSE_HEAD + b"5\r\nhello\r\n",  # no last chunk
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\ncontent-le",  # cut inside the head
    ],
    ids=["mid-chunk", "no-last-chunk", "short-content-length", "mid-head"],
)
def test_a_cut_response_is_an_error(raw: bytes) -> None:
    """The connection ends before the response does: eof() raises."""
    parser = ResponseParser()
    parser.feed(raw)
    with pytest.raises(ProtocolError):
        parser.eof()


@pytest.mark.parametrize(
    "raw",
    [
        b"SPDY/3 200 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n folded: header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
        SSE_HEAD + b"zz\r\n",
        SSE_HEAD + b"-5\r\n",
        SSE_HEAD + b"0x5\r\n",
        SSE_HEAD + b"5_0\r\n",
        SSE_HEAD + b"2\r\nhello\r\n",  # more data than the size said
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok and more",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    ],
    ids=[
        "not-http",
        "bad-status",
        "no-colon",
        "obs-fold",
        "conflicting-lengths",
        "negative-length",
        "bad-chunk-size",
        "negative-chunk-size",
        "0x-chunk-size",
        "underscore-chunk-size",
        "chunk-overrun",
        "bytes-after-the-end",
        "protocol-switch",
    ],
)
def test_malformed_responses_are_refused(raw: bytes) -> None:
    """Bytes that are not a well-formed response raise ProtocolError instead of being guessed at."""
    with pytest.raises(ProtocolError):
        ResponseParser().feed(raw)


def test_a_head_without_end_is_bounded() -> None:
    """A head that never ends raises past MAX_HEAD_BYTES instead of growing the buffer."""
    parser = ResponseParser()
    with pytest.raises(ProtocolError):
        parser.feed(b"HTTP/1.1 200 OK\r\nx: " + b"y" * MAX_HEAD_BYTES)


def test_head_request_has_no_body() -> None:
    """A HEAD response is complete after its head, whatever its content-length says."""
    parser = parse(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n", 5, method=b"HEAD")
    assert parser.complete and parser.body == [b""]
