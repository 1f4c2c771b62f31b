"""Streaming behaviour over the real application: cancel, concurrency, isolation, heartbeats, disconnects."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async

from streaming import protocol
from streaming.models import Connection, StreamSession
from streaming.protocol import CLOSE_REASONS, CloseCode
from tests.conftest import access_for, make_user, wait_for
from tests.wsclient import AppClient

TERMINAL = protocol.TERMINAL_TYPES


@pytest.fixture
def pace(settings: Any) -> None:
    """Mock words 10 ms apart, so a stream is still running while the test acts on it."""
    settings.STREAMING = {**settings.STREAMING, "MOCK_STREAM_DELAY_MS": 10}


def knobs(settings: Any, **values: Any) -> None:
    settings.STREAMING = {**settings.STREAMING, **values}


def session_status(session_id: str) -> str:
    return str(StreamSession.objects.get(session_id=session_id).status)


async def test_cancel_mid_stream(ws: AppClient, pace: None) -> None:
    """cancel mid-stream -> stream.cancelled carrying the last seq sent, then no chunk at all."""
    started = await ws.generate(duration=600)
    for _ in range(3):
        assert (await ws.recv())["type"] == "stream.chunk"
    await ws.send({"type": "cancel", "session_id": started["session_id"], "request_id": "c1"})
    frames = await ws.recv_until(TERMINAL)
    chunks, end = frames[:-1], frames[-1]
    assert all(frame["type"] == "stream.chunk" for frame in chunks)
    assert end == {"type": "stream.cancelled", "session_id": started["session_id"], "seq": 3 + len(chunks)}
    assert await ws.nothing(0.1)


async def test_cancelled_session_saved_as_cancelled(ws: AppClient, pace: None) -> None:
    """A cancelled session's row ends cancelled with the words streamed so far."""
    started = await ws.generate(duration=600)
    await ws.recv()
    await ws.send({"type": "cancel", "session_id": started["session_id"]})
    end = (await ws.recv_until(TERMINAL))[-1]
    await wait_for(lambda: session_status(started["session_id"]) == "cancelled")
    row = await database_sync_to_async(StreamSession.objects.get)(session_id=started["session_id"])
    assert row.words == end["seq"] and len(row.script.split()) == end["seq"]


async def test_cancel_after_completion_repeats_the_end(ws: AppClient) -> None:
    """cancel of the user's own finished session is no error: it answers with how the session ended."""
    started = await ws.generate()
    completed = (await ws.recv_until(TERMINAL))[-1]
    await ws.send({"type": "cancel", "session_id": started["session_id"]})
    again = await ws.recv()
    assert again["type"] in TERMINAL and again["session_id"] == started["session_id"]
    assert again["seq"] == completed["seq"]


async def test_ping_answered_while_streaming(ws: AppClient, pace: None) -> None:
    """A ping sent mid-stream is answered before the stream ends."""
    await ws.generate(duration=120)
    await ws.recv()
    await ws.send({"type": "ping", "id": 99})
    frames = await ws.recv_until({"pong"})
    assert frames[-1]["id"] == 99
    assert not TERMINAL & {frame["type"] for frame in frames}


async def test_several_generations_on_one_connection(ws: AppClient, pace: None) -> None:
    """Three generations run side by side on one socket, each with its own contiguous seq."""
    for request_id in ("a", "b", "c"):
        await ws.send(
            {
                "type": "generate",
                "request_id": request_id,
                "topic": f"topic {request_id}",
                "platform": "tiktok",
                "duration": 15,
            }
        )
    frames: list[dict[str, Any]] = []
    while sum(frame["type"] in TERMINAL for frame in frames) < 3:
        frames.append(await ws.recv())
    started = {frame["request_id"]: frame["session_id"] for frame in frames if frame["type"] == "stream.started"}
    assert sorted(started) == ["a", "b", "c"]
    first_end = next(i for i, frame in enumerate(frames) if frame["type"] in TERMINAL)
    assert sum(frame["type"] == "stream.started" for frame in frames[:first_end]) == 3, "they did not overlap"
    for session_id in started.values():
        own = [frame for frame in frames if frame.get("session_id") == session_id]
        seqs = [frame["seq"] for frame in own if frame["type"] == "stream.chunk"]
        assert seqs == list(range(1, len(seqs) + 1))
        assert own[-1]["type"] == "stream.completed" and own[-1]["seq"] == len(seqs)


async def test_sequential_generations_on_one_connection(ws: AppClient) -> None:
    """A connection can generate again after a stream completes; each script is saved."""
    ends = []
    for topic in ("coffee", "tea"):
        await ws.generate(topic=topic)
        ends.append((await ws.recv_until(TERMINAL))[-1])
    assert [end["type"] for end in ends] == ["stream.completed"] * 2
    assert ends[0]["script_id"] != ends[1]["script_id"]


async def test_five_users_see_only_their_own_frames(transactional_db: Any, pace: None) -> None:
    """Five users streaming at once each receive their own session's frames and nobody else's."""
    users = [await database_sync_to_async(make_user)(f"creator{n}") for n in range(5)]
    clients = [AppClient(token=access_for(u)) for u in users]
    for client in clients:
        await client.open()
    for n, client in enumerate(clients):
        await client.send(
            {"type": "generate", "request_id": f"u{n}", "topic": f"topic {n}", "platform": "tiktok", "duration": 20}
        )
    results = await asyncio.gather(*(client.recv_until(TERMINAL) for client in clients))
    session_ids = set()
    for n, frames in enumerate(results):
        started = frames[0]
        assert started["type"] == "stream.started" and started["request_id"] == f"u{n}"
        assert {frame["session_id"] for frame in frames} == {started["session_id"]}
        seqs = [frame["seq"] for frame in frames if frame["type"] == "stream.chunk"]
        assert seqs == list(range(1, len(seqs) + 1)) and frames[-1]["type"] == "stream.completed"
        session_ids.add(started["session_id"])
        assert await clients[n].nothing(0.05)
    assert len(session_ids) == 5
    for client in clients:
        await client.close()


async def test_server_pings_every_heartbeat_interval(token: str, settings: Any) -> None:
    """A quiet client gets server pings with rising ids, one per heartbeat interval."""
    knobs(settings, HEARTBEAT_INTERVAL_S=0.2, CONNECTION_TIMEOUT_S=30)
    client = AppClient(token=token)
    established = await client.open()
    assert established["heartbeat_interval"] == 0.2
    first, second = await client.recv(timeout=5), await client.recv(timeout=5)
    assert (first, second) == ({"type": "ping", "id": 1}, {"type": "ping", "id": 2})
    await client.close()


async def test_idle_client_closed_4408(token: str, settings: Any) -> None:
    """A client that sends nothing for the connection timeout is closed with 4408."""
    knobs(settings, HEARTBEAT_INTERVAL_S=30, CONNECTION_TIMEOUT_S=0.3)
    client = AppClient(token=token)
    await client.open()
    message = await client.comm.receive_output(timeout=5)
    assert message == {"type": "websocket.close", "code": 4408, "reason": CLOSE_REASONS[CloseCode.IDLE_TIMEOUT]}
    assert type(message["code"]) is int, "Daphne (autobahn) refuses an IntEnum close code"
    await client.comm.disconnect()


async def test_answering_pings_keeps_connection_open(token: str, settings: Any) -> None:
    """A client that answers server pings with pong is not timed out."""
    knobs(settings, HEARTBEAT_INTERVAL_S=0.2, CONNECTION_TIMEOUT_S=1.6)
    client = AppClient(token=token)
    await client.open()
    for _ in range(3):  # pings come about once a second: twice the timeout, kept alive only by the pongs
        ping = await client.recv(timeout=5)
        assert ping["type"] == "ping", ping
        await client.send({"type": "pong", "id": ping["id"]})
    await client.send({"type": "ping", "id": "alive"})
    assert (await client.recv_until({"pong"}))[-1]["id"] == "alive"
    await client.close()


async def test_disconnect_mid_stream_completes_generation(token: str, pace: None) -> None:
    """Closing the socket mid-stream does not stop the generation: the row ends completed with the full script."""
    client = AppClient(token=token)
    await client.open()
    started = await client.generate(duration=30)
    await client.recv()
    await client.close()
    await wait_for(lambda: session_status(started["session_id"]) == "completed", timeout=10)
    row = await database_sync_to_async(StreamSession.objects.get)(session_id=started["session_id"])
    assert row.words == len(row.script.split()) > 1


async def test_connection_row_records_open_and_close(token: str, user: Any) -> None:
    """A socket leaves a row with its user, agent and close time once closed."""
    client = AppClient(token=token, headers=[(b"user-agent", b"pytest-agent/1.0")])
    established = await client.open()
    await client.close()
    await wait_for(lambda: Connection.objects.filter(id=established["connection_id"], closed_at__isnull=False).exists())
    row = await database_sync_to_async(Connection.objects.get)(id=established["connection_id"])
    assert (row.user_id, row.user_agent) == (user.pk, "pytest-agent/1.0")
