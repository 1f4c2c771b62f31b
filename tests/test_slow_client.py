"""A client that stops reading, against real server processes: closed 4413, memory given back, nobody else slowed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async

from streaming import protocol
from streaming.protocol import CloseCode
from tests.conftest import access_for, make_user
from tests.rawsocket import OP_CLOSE, StalledClient, close_code
from tests.servers import DaphneServer
from tests.wsclient import SocketClient, open_socket

pytestmark = pytest.mark.e2e

TERMINAL = protocol.TERMINAL_TYPES
# A finished script of ~1,500 words: each replay of it is ~200 KB of frames.
LONG_SCRIPT = {"platform": "tiktok", "duration": 600}
# Within the rate limit's burst (WS_RATE_LIMIT_BURST, 60 frames): ~12 MB asked of a socket that reads nothing.
RESUMES = 59
# "Within a few MB": allocator noise; without the limit the growth is tens of MB.
RSS_SLACK_KB = 5 * 1024


@pytest.fixture(params=["daphne", "uvicorn"])
def server(request: pytest.FixtureRequest, django_db_setup: Any) -> Iterator[DaphneServer]:
    """Words 2 ms apart: a long script runs for a few seconds, long enough to stream while the other socket stalls;
    a server ping every second, so the registry's tick sends to the stalled socket too."""
    env = {"MOCK_STREAM_DELAY_MS": "2", "WS_HEARTBEAT_INTERVAL_S": "1"}
    with DaphneServer(env=env, server=request.param) as process:
        yield process


def memory_kb(server: DaphneServer, field: str = "VmRSS") -> int:
    assert server.process is not None
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{server.process.pid}/status")


async def read_stream(client: SocketClient, timeout: float = 60) -> tuple[list[int], dict[str, Any]]:
    """Every chunk's seq up to the terminal frame, and the terminal frame."""
    frames = await client.recv_until(TERMINAL, timeout=timeout)
    return [frame["seq"] for frame in frames if frame["type"] == "stream.chunk"], frames[-1]


async def active_connections(server: DaphneServer, staff_token: str) -> int:
    status, body = await asyncio.to_thread(server.get, "/api/websocket/stats", staff_token)
    assert status == 200, body
    return int(body["connections"]["active"])


async def wait_for_connections(server: DaphneServer, staff_token: str, count: int, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while await active_connections(server, staff_token) != count:
            await asyncio.sleep(0.1)


async def wait_for_log(server: DaphneServer, text: str, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while text not in server.log_text():
            await asyncio.sleep(0.05)


async def test_client_that_stops_reading(server: DaphneServer, user: Any, token: str) -> None:
    """A socket that reads nothing while asking for ~12 MB of replays is closed (4413, or reset once Daphne gives
    up on the close handshake), the server's memory comes back, and a reading client on the same process gets
    every seq and its end meanwhile."""
    staff_token = access_for(await database_sync_to_async(make_user)("staff", staff=True))
    async with open_socket(f"{server.ws_url}?token={token}") as reader:
        finished = await reader.generate(**LONG_SCRIPT)
        seqs, end = await read_stream(reader)
        assert end["type"] == "stream.completed" and len(seqs) > 1000
        await reader.resume(finished["session_id"])  # warm-up: a full replay to a reading socket
        assert (await read_stream(reader))[0] == seqs
        before = memory_kb(server)

        live = await reader.generate(**LONG_SCRIPT)
        stalled = await StalledClient.connect(server.port, f"/ws/stream/?token={token}")
        try:
            # It listens to the reader's running stream too: a stall there would stall the reader.
            await stalled.send_json({"type": "resume", "session_id": live["session_id"], "last_seq": 0})
            for _ in range(RESUMES):
                await stalled.send_json({"type": "resume", "session_id": finished["session_id"], "last_seq": 0})

            live_seqs, live_end = await read_stream(reader)
            assert live_end["type"] == "stream.completed", live_end
            assert live_seqs == list(range(1, live_end["seq"] + 1))
            assert (await reader.recv_until({"ping"}, timeout=5))[-1]["type"] == "ping"  # the tick goes on

            await wait_for_log(server, "closing a socket that stopped reading", timeout=10)
            frames, ended = await stalled.read_to_end(timeout=30)
            await wait_for_connections(server, staff_token, 1, timeout=30)
            after, peak = memory_kb(server), memory_kb(server, "VmHWM")
        finally:
            stalled.close()
    closes = [close_code(payload) for opcode, payload in frames if opcode == OP_CLOSE]
    assert closes == [CloseCode.TOO_SLOW] or (closes == [] and ended == "reset"), (closes, ended)
    assert frames[0][1].startswith(b'{"type":"connection.established"')  # it was sent frames before it stalled
    assert after - before < RSS_SLACK_KB, f"RSS {before} kB -> {after} kB after the socket closed"
    assert peak - before < RSS_SLACK_KB, f"RSS {before} kB -> peak {peak} kB while it was open"
