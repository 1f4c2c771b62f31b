"""Resume, multi-tab watching, retention and cancel from another connection, embedded and on Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from channels.layers import channel_layers

from streaming import protocol
from streaming.store import get_store
from tests.conftest import OpenClient, access_for
from tests.redisutil import SENTINEL_MASTER, channel_layers_for, flushed_redis
from tests.wsclient import AppClient

TERMINAL = protocol.TERMINAL_TYPES


@pytest.fixture(
    params=[
        "embedded",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("sentinel", marks=pytest.mark.redis),
    ]
)
def mode(request: pytest.FixtureRequest, settings: Any) -> Iterator[str]:
    """Every test here runs on the in-memory store and layer, on Redis, and on Redis found through Sentinel."""
    if request.param == "redis":
        url = flushed_redis()
        settings.REDIS_URL = url
        settings.CHANNEL_LAYERS = channel_layers_for(url)
    elif request.param == "sentinel":
        url = flushed_redis()
        sentinels = request.getfixturevalue("sentinel")
        settings.REDIS_URL = url.replace("127.0.0.1:6379", "sentinel-named-master")
        settings.REDIS_SENTINELS = sentinels
        settings.REDIS_SENTINEL_MASTER = SENTINEL_MASTER
        settings.CHANNEL_LAYERS = channel_layers_for(settings.REDIS_URL, sentinels, SENTINEL_MASTER)
    else:
        settings.REDIS_URL = ""
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    yield request.param
    channel_layers.backends.clear()


def paced(settings: Any, delay_ms: int) -> None:
    settings.STREAMING = {**settings.STREAMING, "MOCK_STREAM_DELAY_MS": delay_ms}


def seqs(frames: list[dict[str, Any]]) -> list[int]:
    return [frame["seq"] for frame in frames if frame["type"] == "stream.chunk"]


async def chunks_up_to(client: AppClient, seq: int) -> list[dict[str, Any]]:
    """Frames until the chunk with this seq (a stream that is still running)."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(5):
        while not frames or frames[-1].get("seq") != seq:
            frame = await client.recv()
            assert frame["type"] == "stream.chunk", frame
            frames.append(frame)
    return frames


async def test_resume_after_disconnect_mid_stream(connect: OpenClient, settings: Any) -> None:
    """A socket dropped after seq 5; resume(last_seq=5) on a new one gets 6..N exactly once, then completed."""
    paced(settings, 10)
    first = await connect()
    started = await first.generate(duration=30)
    await chunks_up_to(first, 5)
    await first.close()
    second = await connect()
    await second.send({"type": "resume", "session_id": started["session_id"], "last_seq": 5})
    frames = await second.recv_until(TERMINAL)
    end = frames[-1]
    assert end["type"] == "stream.completed", end
    assert seqs(frames) == list(range(6, end["seq"] + 1))
    assert end["seq"] == started["estimated_words"]
    assert await second.nothing()


async def test_second_connection_watches_live_from_zero(connect: OpenClient, settings: Any) -> None:
    """A second tab resuming with last_seq 0 mid-stream sees exactly the frames the first tab sees."""
    paced(settings, 10)
    first = await connect()
    started = await first.generate(duration=30)
    await chunks_up_to(first, 3)
    second = await connect()
    await second.send({"type": "resume", "session_id": started["session_id"], "last_seq": 0})
    watched, own = await asyncio.gather(second.recv_until(TERMINAL), first.recv_until(TERMINAL))
    assert seqs(watched) == list(range(1, started["estimated_words"] + 1))
    assert watched[3:] == own
    assert watched[-1]["type"] == "stream.completed"


async def test_resume_after_completion_replays_everything(connect: OpenClient) -> None:
    """After the end, resume(last_seq=0) replays every chunk and the same terminal frame."""
    first = await connect()
    started = await first.generate()
    original = await first.recv_until(TERMINAL)
    second = await connect()
    await second.send({"type": "resume", "session_id": started["session_id"], "last_seq": 0})
    replayed = await second.recv_until(TERMINAL)
    assert replayed == original
    assert await second.nothing()


async def test_resume_expired_after_retention(connect: OpenClient, settings: Any) -> None:
    """Once the retention window has passed, the owner's resume gets resume_expired."""
    settings.STREAMING = {**settings.STREAMING, "STREAM_RETENTION_S": 1}
    client = await connect()
    started = await client.generate()
    await client.recv_until(TERMINAL)
    async with asyncio.timeout(5):  # expiry has no event to wait on
        while await get_store().read(started["session_id"], 0) is not None:
            await asyncio.sleep(0.05)
    await client.send({"type": "resume", "session_id": started["session_id"], "last_seq": 0})
    error = await client.recv()
    assert error["type"] == "error" and error["code"] == "resume_expired", error


async def test_other_users_session_is_not_found(connect: OpenClient, other_user: Any) -> None:
    """Another user's session id is answered exactly like an unknown one: not_found."""
    alice = await connect()
    started = await alice.generate()
    await alice.recv_until(TERMINAL)
    bob = await connect(access_for(other_user))
    await bob.send({"type": "resume", "session_id": started["session_id"], "last_seq": 0})
    theirs = await bob.recv()
    await bob.send({"type": "resume", "session_id": str(uuid.uuid4()), "last_seq": 0})
    unknown = await bob.recv()
    assert theirs == unknown
    assert theirs["type"] == "error" and theirs["code"] == "not_found"


async def test_cancel_from_another_connection_reaches_every_watcher(connect: OpenClient, settings: Any) -> None:
    """cancel on a third socket -> the generating socket, a watching tab and the canceller get stream.cancelled."""
    paced(settings, 20)
    producer = await connect()
    started = await producer.generate(duration=120)
    watcher = await connect()
    await watcher.send({"type": "resume", "session_id": started["session_id"], "last_seq": 0})
    seen = await chunks_up_to(watcher, 2)
    canceller = await connect()
    await canceller.send({"type": "cancel", "session_id": started["session_id"]})
    produced, watched, cancelled = await asyncio.gather(
        *(client.recv_until(TERMINAL, timeout=2) for client in (producer, watcher, canceller))
    )
    ends = [produced[-1], watched[-1], cancelled[-1]]
    assert {end["type"] for end in ends} == {"stream.cancelled"}
    last = ends[0]["seq"]
    assert {end["seq"] for end in ends} == {last} and last < started["estimated_words"]
    assert seqs(produced)[-1] == last
    assert seqs(seen + watched) == list(range(1, last + 1))
    assert seqs(cancelled) == []
    assert await producer.nothing() and await watcher.nothing()


@pytest.mark.parametrize("beyond", [lambda last: last + 1, lambda _last: protocol.MAX_SEQ], ids=["next", "MAX_SEQ"])
async def test_resume_past_the_last_word_sends_only_the_terminal(
    connect: OpenClient, beyond: Callable[[int], int]
) -> None:
    """After the end, a last_seq beyond the stored words (up to MAX_SEQ) replays nothing, then the terminal."""
    first = await connect()
    started = await first.generate()
    original = (await first.recv_until(TERMINAL))[-1]
    last_seq = beyond(original["seq"])
    second = await connect()
    await second.send({"type": "resume", "session_id": started["session_id"], "last_seq": last_seq})
    assert await second.recv() == original
    assert await second.nothing()


async def test_resume_at_max_seq_of_a_running_stream_waits_for_the_terminal(connect: OpenClient, settings: Any) -> None:
    """Mid-stream, last_seq = MAX_SEQ: no chunk (the client has them all), then the stream's one terminal frame."""
    paced(settings, 10)
    first = await connect()
    started = await first.generate(duration=30)
    await chunks_up_to(first, 2)
    second = await connect()
    await second.send({"type": "resume", "session_id": started["session_id"], "last_seq": protocol.MAX_SEQ})
    watched, own = await asyncio.gather(second.recv_until(TERMINAL), first.recv_until(TERMINAL))
    assert watched == [own[-1]]
    assert own[-1]["type"] == "stream.completed"


@pytest.mark.parametrize("last_seq", [str(protocol.MAX_SEQ + 1), str(2**63), str(2**64), str(10**30), "-1"])
async def test_resume_outside_the_seq_range_is_bad_request(connect: OpenClient, last_seq: str) -> None:
    """A last_seq above MAX_SEQ (however large) or below 0 answers bad_request; the socket stays usable."""
    client = await connect()
    started = await client.generate()
    end = (await client.recv_until(TERMINAL))[-1]
    frame = f'{{"type": "resume", "session_id": "{started["session_id"]}", "last_seq": {last_seq}, "request_id": "r"}}'
    await client.send_raw(frame)
    message = f"'last_seq' must be an integer from 0 to {protocol.MAX_SEQ}."
    assert await client.recv() == {"type": "error", "code": "bad_request", "message": message, "request_id": "r"}
    await client.send({"type": "resume", "session_id": started["session_id"], "last_seq": end["seq"]})
    assert await client.recv() == end


async def test_store_read_past_the_last_word_is_empty(connect: OpenClient) -> None:
    """Both stores answer a read after MAX_SEQ with the session and no words (Redis LRANGE takes it)."""
    client = await connect()
    started = await client.generate()
    await client.recv_until(TERMINAL)
    state = await get_store().read(started["session_id"], protocol.MAX_SEQ)
    assert state is not None and state.words == [] and state.terminal is not None
