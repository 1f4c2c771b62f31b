"""A watch's framing, without I/O: one word per frame unless asked, multi-word frames that reassemble exactly."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from streaming import protocol
from streaming.chunks import MAX_WORDS_PER_FRAME, Words
from streaming.pacer import close_pacer
from streaming.watch import Watch

SID = "5f0e0000-0000-4000-8000-000000000001"
TIMEOUT_S = 5


class Socket:
    """What a watch queued for its connection, in order."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.sent = asyncio.Event()

    def put(self, text: str) -> None:
        self.frames.append(text)
        self.sent.set()

    def parsed(self) -> list[dict[str, Any]]:
        return [orjson.loads(frame) for frame in self.frames]


def watch(socket: Socket, last_seq: int = 0, *, batch: bool = False) -> Watch:
    return Watch(socket.put, SID, last_seq, lambda _watch: None, batch=batch)


def words(first: int, *texts: str) -> Words:
    return Words(SID, first, list(texts), 150)


def reassemble(frames: list[dict[str, Any]]) -> tuple[list[int], str]:
    """(every seq covered, in order; the text) from stream.chunk frames of either kind."""
    seqs: list[int] = []
    text = ""
    for frame in frames:
        if frame["type"] != "stream.chunk":
            continue
        count = frame.get("count", 1)
        seqs += range(frame["seq"] - count + 1, frame["seq"] + 1)
        text += frame["text"]
    return seqs, text


def test_one_word_frames_are_byte_for_byte_what_they_were() -> None:
    """A client that did not ask gets exactly protocol.stream_chunk per word, as before batching."""
    socket = Socket()
    watch(socket).deliver_words(words(1, "Hook: ", "Stop ", "guessing."))
    assert socket.frames == [
        protocol.stream_chunk(SID, 1, "Hook: ", 150),
        protocol.stream_chunk(SID, 2, "Stop ", 150),
        protocol.stream_chunk(SID, 3, "guessing.", 150),
    ]


def test_seqs_already_sent_are_dropped_at_the_seam() -> None:
    """Replay up to 4, then live words 3..6: each seq once, in order."""
    socket = Socket()
    w = watch(socket, last_seq=1)
    w.replay(words(2, "b ", "c ", "d "), None)
    w.deliver_words(words(3, "c ", "d ", "e ", "f "))
    w.deliver_terminal(protocol.stream_completed(SID, 1, 6, 10, {}))
    frames = socket.parsed()
    assert [frame["seq"] for frame in frames[:-1]] == [2, 3, 4, 5, 6]
    assert frames[-1]["type"] == "stream.completed" and frames[-1]["seq"] == 6


def test_terminal_comes_once_and_nothing_after_it() -> None:
    socket = Socket()
    w = watch(socket)
    w.deliver_words(words(1, "a "))
    w.deliver_terminal(protocol.stream_cancelled(SID, 1))
    w.deliver_terminal(protocol.stream_cancelled(SID, 1))
    w.deliver_words(words(2, "b "))
    assert [frame["type"] for frame in socket.parsed()] == ["stream.chunk", "stream.cancelled"]


async def test_batch_watch_holds_live_words_then_sends_one_frame() -> None:
    """Live words of a batch watch wait for the hold window, then go out as one frame: seq of the last, count."""
    socket = Socket()
    w = watch(socket, batch=True)
    w.deliver_words(words(1, "Hook: "))
    w.deliver_words(words(2, "Stop ", "guessing. "))
    assert socket.frames == []
    async with asyncio.timeout(TIMEOUT_S):
        await socket.sent.wait()
    assert socket.parsed() == [
        {
            "type": "stream.chunk",
            "session_id": SID,
            "seq": 3,
            "count": 3,
            "text": "Hook: Stop guessing. ",
            "words": 3,
            "progress": protocol.progress(3, 150),
        }
    ]
    close_pacer()


async def test_terminal_releases_held_words_first() -> None:
    """A terminal frame is never delayed, and never overtakes the words before it."""
    socket = Socket()
    w = watch(socket, batch=True)
    w.deliver_words(words(1, "a ", "b "))
    w.deliver_terminal(protocol.stream_completed(SID, 1, 2, 10, {}))
    frames = socket.parsed()
    kinds = [(frame["type"], frame.get("count")) for frame in frames]
    assert kinds == [("stream.chunk", 2), ("stream.completed", None)]
    assert frames[0]["seq"] == frames[1]["seq"] == 2
    close_pacer()


def test_batch_replay_goes_out_at_once_in_bounded_frames() -> None:
    """A replay is not held: stored words leave at once, MAX_WORDS_PER_FRAME at most per frame."""
    socket = Socket()
    texts = [f"w{i} " for i in range(1, 2 * MAX_WORDS_PER_FRAME + 8)]
    watch(socket, last_seq=3, batch=True).replay(words(1, *texts), None)
    frames = socket.parsed()
    assert [frame["count"] for frame in frames] == [MAX_WORDS_PER_FRAME, MAX_WORDS_PER_FRAME, len(texts) - 3 - 200]
    seqs, text = reassemble(frames)
    assert seqs == list(range(4, len(texts) + 1))
    assert text == "".join(texts[3:])


async def test_batch_frames_reassemble_to_the_one_word_stream() -> None:
    """The same words through a one-word watch and a batch watch: the same seqs and the same text."""
    texts = [f"w{i}{' ' if i % 7 else chr(10) * 2}" for i in range(1, 60)]
    one, many = Socket(), Socket()
    single, batch = watch(one), watch(many, batch=True)
    first = 1
    for size in (1, 5, 2, 30, 21):
        part = words(first, *texts[first - 1 : first - 1 + size])
        single.deliver_words(part)
        batch.deliver_words(part)
        first += size
    ending = protocol.stream_completed(SID, 1, len(texts), 10, {})
    single.deliver_terminal(ending)
    batch.deliver_terminal(ending)
    assert reassemble(one.parsed()) == reassemble(many.parsed()) == (list(range(1, 60)), "".join(texts))
    assert one.parsed()[-1] == many.parsed()[-1] == orjson.loads(protocol.encode(ending))
    close_pacer()


async def test_detached_watch_sends_nothing_more() -> None:
    socket = Socket()
    w = watch(socket, batch=True)
    w.deliver_words(words(1, "a "))
    w.detach()
    w.release()
    w.deliver_words(words(2, "b "))
    assert socket.frames == []
    close_pacer()


def test_words_the_pacer_held_go_out_at_once_as_one_frame() -> None:
    """The runner held these words for the window already: a batch watch sends them now, holding nothing."""
    socket = Socket()
    w = watch(socket, batch=True)
    w.deliver_words(Words(SID, 1, ["Hook: ", "open "], 150, held=True))
    assert [(f["seq"], f["count"], f["text"]) for f in socket.parsed()] == [(2, 2, "Hook: open ")]
    w.deliver_words(Words(SID, 2, ["open ", "with "], 150, held=True))  # seq 2 again: dropped at the seam
    assert [(f["seq"], f["count"], f["text"]) for f in socket.parsed()][-1] == (3, 1, "with ")


def test_held_words_reach_a_one_word_watch_one_word_a_frame() -> None:
    socket = Socket()
    w = watch(socket)
    w.deliver_words(Words(SID, 1, ["Hook: ", "open "], 150, held=True))
    assert [(f["seq"], "count" in f) for f in socket.parsed()] == [(1, False), (2, False)]


async def test_words_held_here_go_out_before_words_held_elsewhere() -> None:
    """Words this watch holds, then words held upstream (a body read by the read pass from then on): the held
    ones leave first under their own seq, then the new ones; each seq once."""
    socket = Socket()
    w = watch(socket, batch=True)
    w.deliver_words(words(1, "Hook: "))
    assert socket.frames == []
    w.deliver_words(Words(SID, 2, ["open ", "with "], 150, held=True))
    assert [(f["seq"], f["count"], f["text"]) for f in socket.parsed()] == [(1, 1, "Hook: "), (3, 2, "open with ")]
    w.deliver_words(words(3, "with ", "a "))  # seq 3 again: dropped at the seam; seq 4 held
    w.deliver_words(Words(SID, 5, ["hook. "], 150, held=True))
    seqs, text = reassemble(socket.parsed())
    assert (seqs, text) == ([1, 2, 3, 4, 5], "Hook: open with a hook. ")
    close_pacer()
