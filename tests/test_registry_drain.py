"""The registry's drain in process, through the real application (embedded mode): what a socket sees."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async

from streaming import protocol
from streaming.models import StreamSession
from streaming.protocol import CLOSE_REASONS, CloseCode
from streaming.registry import get_registry
from tests.wsclient import AppClient

TERMINAL = protocol.TERMINAL_TYPES


@pytest.fixture(autouse=True)
def paced(settings: Any) -> None:
    """Words 5 ms apart: a 30 s script (75 words) is still running while the test drains."""
    settings.STREAMING = {**settings.STREAMING, "MOCK_STREAM_DELAY_MS": 5}


async def closed_with(ws: AppClient) -> dict[str, Any]:
    """The server's close of this socket; then the client says goodbye, as a real one does."""
    message: dict[str, Any] = await ws.comm.receive_output(5)
    assert message["type"] == "websocket.close", message
    await ws.comm.send_input({"type": "websocket.disconnect", "code": message["code"]})
    return message


async def test_running_stream_finishes_then_socket_closes_1001(ws: AppClient) -> None:
    """Embedded drain: the stream runs to stream.completed on its socket, then the socket closes with 1001."""
    started = await ws.generate(duration=30)
    draining = asyncio.create_task((await get_registry()).drain(5))
    frames = await ws.recv_until(TERMINAL)
    close = await closed_with(ws)
    await asyncio.wait_for(draining, 5)
    assert frames[-1]["type"] == "stream.completed"
    assert [frame["seq"] for frame in frames[:-1]] == list(range(1, started["estimated_words"] + 1))
    assert (close["code"], close["reason"]) == (1001, CLOSE_REASONS[CloseCode.GOING_AWAY])


async def test_generate_during_drain_is_refused_shutting_down(ws: AppClient) -> None:
    """A generate on an open socket of a draining process gets error shutting_down; the running stream goes on."""
    await ws.generate(duration=30)
    draining = asyncio.create_task((await get_registry()).drain(5))
    await ws.send({**{"type": "generate", "topic": "x", "platform": "tiktok", "duration": 30}, "request_id": "r2"})
    frames = await ws.recv_until({"error"})
    frames += await ws.recv_until(TERMINAL)
    await closed_with(ws)
    await asyncio.wait_for(draining, 5)
    (error,) = [frame for frame in frames if frame["type"] == "error"]
    assert (error["code"], error["request_id"]) == ("shutting_down", "r2")
    assert frames[-1]["type"] == "stream.completed"


async def test_new_socket_refused_while_draining(ws: AppClient, token: str) -> None:
    """Once the drain started, a new handshake is refused before accept."""
    await ws.generate(duration=30)
    draining = asyncio.create_task((await get_registry()).drain(5))
    late = AppClient(token=token)
    connected, _code = await late.comm.connect(timeout=5)
    await ws.recv_until(TERMINAL)
    await closed_with(ws)
    await asyncio.wait_for(draining, 5)
    assert not connected


async def test_past_the_grace_the_stream_fails_shutting_down_and_is_saved(ws: AppClient) -> None:
    """Grace over: stream.failed shutting_down with the last seq sent, then 1001; the saved script is those words."""
    started = await ws.generate(duration=120)
    frames = await ws.chunks_up_to(3)
    draining = asyncio.create_task((await get_registry()).drain(0.1))
    frames += await ws.recv_until(TERMINAL)
    close = await closed_with(ws)
    await asyncio.wait_for(draining, 5)
    end = frames[-1]
    assert end["type"] == "stream.failed" and end["error"]["code"] == "shutting_down", end
    chunks = [frame for frame in frames if frame["type"] == "stream.chunk"]
    assert [chunk["seq"] for chunk in chunks] == list(range(1, end["seq"] + 1))
    assert close["code"] == 1001
    row = await database_sync_to_async(StreamSession.objects.get)(session_id=started["session_id"])
    assert (row.status, row.error_code, row.words) == ("failed", "shutting_down", end["seq"])
    assert row.script == "".join(chunk["text"] for chunk in chunks)
