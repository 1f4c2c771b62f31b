"""The SSE decoder the OpenAI provider reads its stream with: event data from bytes cut anywhere."""

from __future__ import annotations

import pytest

from streaming.providers.sse import MAX_EVENT_BYTES, SSEDecoder, SSEError


def decode_in_pieces(body: bytes, size: int) -> list[bytes]:
    """Every event's data, the body fed `size` bytes at a time."""
    decoder = SSEDecoder()
    events: list[bytes] = []
    for start in range(0, len(body), size):
        events += decoder.feed(body[start : start + size])
    return events


@pytest.mark.parametrize(
    ("body", "events"),
    [
        (b'data: {"a":1}\n\n', [b'{"a":1}']),
        (b"data: one\n\ndata: two\n\ndata: [DONE]\n\n", [b"one", b"two", b"[DONE]"]),
        (b"data: one\r\n\r\ndata: two\r\n\r\n", [b"one", b"two"]),
        (b"data: one\r\rdata: two\r\r", [b"one"]),  # a CR at the very end waits for a possible LF
        (b"data:no-space\n\n", [b"no-space"]),
        (b"data:  two-spaces\n\n", [b" two-spaces"]),
        (b"data: line one\ndata: line two\n\n", [b"line one\nline two"]),
        (b": keep-alive comment\n\ndata: x\n\n", [b"x"]),
        (b"event: ping\nid: 7\nretry: 100\n\n", []),
        (b"event: message\ndata: x\nid: 7\n\n", [b"x"]),
        (b"data: unfinished", []),
        (b"\n\n\n\ndata: x\n\n", [b"x"]),
        ("data: café 咖啡 👍🏽\n\n".encode(), ["café 咖啡 👍🏽".encode()]),
    ],
    ids=[
        "one-event",
        "several-events",
        "crlf",
        "cr-only",
        "no-space-after-colon",
        "only-one-space-dropped",
        "multi-line-data",
        "comment",
        "fields-without-data",
        "other-fields-around-data",
        "unfinished-event-held",
        "blank-lines",
        "multibyte",
    ],
)
def test_events_whole_and_cut_anywhere(body: bytes, events: list[bytes]) -> None:
    """The same events come out whether the body arrives whole, byte by byte or three bytes at a time."""
    assert SSEDecoder().feed(body) == events
    assert decode_in_pieces(body, 1) == events
    assert decode_in_pieces(body, 3) == events


def test_crlf_cut_between_cr_and_lf_is_one_line_end() -> None:
    """A CRLF split across two reads ends one line, not two (which would end the event early)."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r") == []
    assert decoder.feed(b"\n\r\n") == [b"a\nb"]


def test_an_event_that_never_ends_is_refused() -> None:
    """Bytes past MAX_EVENT_BYTES without a blank line raise instead of growing the buffer."""
    decoder = SSEDecoder()
    decoder.feed(b"data: " + b"x" * (MAX_EVENT_BYTES // 2))
    with pytest.raises(SSEError):
        decoder.feed(b"x" * (MAX_EVENT_BYTES // 2 + 10))
