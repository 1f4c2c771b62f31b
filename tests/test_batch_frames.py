"""On the wire, after batching: one-word clients see what they always saw; multi-word frames reassemble exactly.

Not timed: every assertion is about which frames arrive and in what order, never about when.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers

from streaming import protocol
from streaming.models import StreamSession
from tests.conftest import OpenClient, wait_for
from tests.redisutil import channel_layers_for, flushed_redis
from tests.servers import DaphneServer
from tests.wsclient import FrameClient, open_socket

TERMINAL = protocol.TERMINAL_TYPES
ONE_WORD_KEYS = {"type", "session_id", "seq", "text", "words", "progress"}
ONE_WORD = re.compile(r"\S+\s*")


@pytest.fixture(params=["embedded", pytest.param("redis", marks=pytest.mark.redis)])
def mode(request: pytest.FixtureRequest, settings: Any) -> Iterator[str]:
    """In-memory store and layer, and Redis; words 4 ms apart, so several fall due in one pacer pass."""
    settings.STREAMING = {**settings.STREAMING, "MOCK_STREAM_DELAY_MS": 4}
    if request.param == "redis":
        settings.REDIS_URL = flushed_redis()
        settings.CHANNEL_LAYERS = channel_layers_for(settings.REDIS_URL)
    else:
        settings.REDIS_URL = ""
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    yield request.param
    channel_layers.backends.clear()


def by_session(frames: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    sessions: dict[str, list[dict[str, Any]]] = {}
    for frame in frames:
        if "session_id" in frame:
            sessions.setdefault(frame["session_id"], []).append(frame)
    return sessions


def reassemble(frames: list[dict[str, Any]]) -> tuple[list[int], str]:
    """Every seq the chunk frames cover, in arrival order, and their text joined."""
    seqs: list[int] = []
    text = ""
    for frame in frames:
        if frame["type"] == "stream.chunk":
            count = frame.get("count", 1)
            seqs += range(frame["seq"] - count + 1, frame["seq"] + 1)
            text += frame["text"]
    return seqs, text


def assert_one_word_stream(frames: list[dict[str, Any]], first_seq: int = 1) -> None:
    """Exactly what a one-word client always got: one word per chunk, seq contiguous, then one terminal."""
    chunks, end = frames[:-1], frames[-1]
    assert all(frame["type"] == "stream.chunk" for frame in chunks), [f["type"] for f in chunks]
    for frame in chunks:
        assert set(frame) == ONE_WORD_KEYS, frame
        assert ONE_WORD.fullmatch(frame["text"]), frame["text"]
        assert frame["words"] == frame["seq"]
    assert [frame["seq"] for frame in chunks] == list(range(first_seq, first_seq + len(chunks)))
    progress = [frame["progress"] for frame in chunks]
    assert progress == sorted(progress) and all(0 <= p < 1 for p in progress)
    assert end["type"] == "stream.completed" and end["seq"] == (chunks[-1]["seq"] if chunks else first_seq - 1)


async def until_terminals(client: FrameClient, count: int) -> list[dict[str, Any]]:
    """Every frame until `count` terminal frames have arrived."""
    frames: list[dict[str, Any]] = []
    for _ in range(count):
        frames += await client.recv_until(TERMINAL, timeout=20)
    return frames


def saved_script(session_id: str) -> str:
    return str(StreamSession.objects.get(session_id=session_id).script)


async def saved(session_id: str) -> str:
    await wait_for(lambda: StreamSession.objects.get(session_id=session_id).status == "completed")
    return await database_sync_to_async(saved_script)(session_id)


async def test_one_word_clients_see_one_word_per_frame(connect: OpenClient) -> None:
    """Three streams on one socket, many words per pacer pass: still one word per frame, seqs contiguous,
    the terminal after the last chunk, and the words are the saved script."""
    ws = await connect()
    for request_id in ("a", "b", "c"):
        await ws.send({"type": "generate", "request_id": request_id, "topic": f"coffee {request_id}",
                       "platform": "tiktok", "duration": 40})  # fmt: skip
    frames = [frame for frame in await until_terminals(ws, 3) if frame["type"] != "stream.started"]
    sessions = by_session(frames)
    assert len(sessions) == 3
    for session_id, own in sessions.items():
        assert_one_word_stream(own)
        assert reassemble(own)[1] == await saved(session_id)


async def test_one_word_exactly_once_across_replay_and_live(connect: OpenClient) -> None:
    """A second socket resumes mid-stream from seq 5: 6..N once each, in order, across the seam, then the end."""
    first = await connect()
    started = await first.generate(duration=40)
    await first.chunks_up_to(5)
    second = await connect()
    await second.resume(started["session_id"], 5)
    watched = await second.recv_until(TERMINAL, timeout=20)
    assert_one_word_stream(watched, first_seq=6)
    assert watched[-1]["seq"] == started["estimated_words"]
    assert await second.nothing()


async def test_multi_word_frames_reassemble_to_the_same_text_and_seqs(connect: OpenClient) -> None:
    """The same request, once with one word per frame and once with "batch": the same seqs and text, in
    fewer frames, each chunk carrying the seq of its last word and its count; the terminal comes last."""
    single, batched = await connect(), await connect()
    one = await single.generate(duration=40)
    many = await batched.generate(duration=40, batch=True)
    one_frames, many_frames = await asyncio.gather(
        single.recv_until(TERMINAL, timeout=20), batched.recv_until(TERMINAL, timeout=20)
    )
    assert_one_word_stream(one_frames)
    chunks = many_frames[:-1]
    assert all(frame["type"] == "stream.chunk" and frame["count"] >= 1 for frame in chunks)
    assert all(frame["words"] == frame["seq"] for frame in chunks)
    assert max(frame["count"] for frame in chunks) > 1
    assert reassemble(many_frames) == reassemble(one_frames)
    seqs, text = reassemble(many_frames)
    assert seqs == list(range(1, many["estimated_words"] + 1))
    assert many_frames[-1]["type"] == "stream.completed" and many_frames[-1]["seq"] == seqs[-1]
    assert text == await saved(many["session_id"]) == await saved(one["session_id"])


async def test_multi_word_resume_mid_stream_is_exactly_once(connect: OpenClient) -> None:
    """A batch resume from seq 5 while the stream runs: the replay and the held live frames cover 6..N once."""
    first = await connect()
    started = await first.generate(duration=40)
    await first.chunks_up_to(5)
    second = await connect()
    await second.send({"type": "resume", "session_id": started["session_id"], "last_seq": 5, "batch": True})
    watched = await second.recv_until(TERMINAL, timeout=20)
    seqs, text = reassemble(watched)
    assert seqs == list(range(6, started["estimated_words"] + 1))
    script = await saved(started["session_id"])
    assert text == "".join(ONE_WORD.findall(script)[5:])
    assert watched[-1]["seq"] == seqs[-1]


@pytest.mark.parametrize("value", ["yes", 1, None, [True]])
async def test_batch_must_be_a_boolean(connect: OpenClient, value: Any) -> None:
    ws = await connect()
    await ws.send({"type": "generate", "request_id": "r9", "topic": "t", "platform": "tiktok", "duration": 30,
                   "batch": value})  # fmt: skip
    assert await ws.recv() == {
        "type": "error",
        "code": "bad_request",
        "message": "'batch' must be true or false.",
        "request_id": "r9",
    }


@pytest.fixture
def cluster(user: Any) -> Iterator[tuple[DaphneServer, DaphneServer]]:
    """Two real Daphne processes on the test Redis."""
    env = {"REDIS_URL": flushed_redis(), "MOCK_STREAM_DELAY_MS": "10"}
    with ThreadPoolExecutor(2) as pool:
        servers = list(pool.map(lambda _: DaphneServer(env).start(), range(2)))
    yield servers[0], servers[1]
    for server in servers:
        server.stop()


@pytest.mark.e2e
@pytest.mark.redis
async def test_multi_word_frames_across_processes(cluster: tuple[DaphneServer, DaphneServer], token: str) -> None:
    """Real sockets: a batch stream on one process, watched from the start on the other with and without
    "batch": the three views reassemble to the same seqs and text."""
    one, two = cluster
    async with (
        open_socket(f"{one.ws_url}?token={token}") as producer,
        open_socket(f"{two.ws_url}?token={token}") as batch_watcher,
        open_socket(f"{two.ws_url}?token={token}") as word_watcher,
    ):
        started = await producer.generate(duration=40, batch=True)
        await batch_watcher.send({"type": "resume", "session_id": started["session_id"], "batch": True})
        await word_watcher.resume(started["session_id"], 0)
        produced, batch_view, word_view = await asyncio.gather(
            producer.recv_until(TERMINAL, timeout=30),
            batch_watcher.recv_until(TERMINAL, timeout=30),
            word_watcher.recv_until(TERMINAL, timeout=30),
        )
    assert_one_word_stream(word_view)
    expected = (list(range(1, started["estimated_words"] + 1)), await saved(started["session_id"]))
    assert reassemble(produced) == reassemble(batch_view) == reassemble(word_view) == expected
    assert produced[-1] == batch_view[-1] == word_view[-1]
