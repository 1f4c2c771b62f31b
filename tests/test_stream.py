"""Generating a script over the socket: started, contiguous chunks, completed, saved."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from streaming.models import StreamSession
from tests.wsclient import AppClient


async def test_full_stream_contiguous_and_saved(ws: AppClient) -> None:
    """generate -> stream.started, chunks seq 1..N with rising progress, stream.completed; script saved."""
    started = await ws.generate(duration=60)
    assert started["provider"] == "mock" and started["request_id"] == "r1"
    assert started["estimated_words"] == 150
    frames = await ws.recv_until({"stream.completed", "stream.failed"})
    chunks, end = frames[:-1], frames[-1]
    assert end["type"] == "stream.completed", end
    assert [c["seq"] for c in chunks] == list(range(1, len(chunks) + 1))
    assert all(c["session_id"] == started["session_id"] for c in chunks)
    progress = [c["progress"] for c in chunks]
    assert progress == sorted(progress) and 0 <= progress[0] and progress[-1] < 1
    assert chunks[0]["text"] == "Hook: "
    assert all(len(c["text"].split()) == 1 for c in chunks)
    assert end["seq"] == end["words"] == len(chunks)
    row = await database_sync_to_async(StreamSession.objects.get)(session_id=started["session_id"])
    assert row.status == "completed" and row.id == end["script_id"]
    assert row.script == "".join(c["text"] for c in chunks)
    assert row.words == len(chunks)


async def test_ping_pong(ws: AppClient) -> None:
    """ping -> pong with the same id and a server time."""
    await ws.send({"type": "ping", "id": "abc"})
    pong = await ws.recv()
    assert pong["type"] == "pong" and pong["id"] == "abc" and pong["server_time"].endswith("Z")


async def test_established_frame(ws: AppClient, user: Any) -> None:
    """connection.established names the user, the heartbeat and the protocol version."""
    frame = ws.established
    assert frame["user"] == {"id": user.pk, "username": "alice"}
    assert frame["heartbeat_interval"] == 30 and frame["connection_timeout"] == 60 and frame["protocol"] == 1
