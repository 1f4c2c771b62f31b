"""SIGTERM to a real server process: it drains, so a deploy loses no word, no terminal frame, no saved script."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
import websockets
from channels.db import database_sync_to_async
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from streaming import protocol
from streaming.models import StreamSession
from streaming.protocol import CLOSE_REASONS, CloseCode
from tests.conftest import access_for, make_user, wait_for
from tests.redisutil import flushed_redis, redis_test_url
from tests.servers import ROOT, DaphneServer
from tests.wsclient import SocketClient, open_socket

pytestmark = pytest.mark.e2e

TERMINAL = protocol.TERMINAL_TYPES
SERVERS = ["daphne", "uvicorn"]
GRACE_S = 10
# Words 20 ms apart: a 60 s tiktok script (150 words) runs 3 s, so it is mid-stream when SIGTERM arrives.
# PROCESS_TTL_S is long, so only the drain (not an expired heartbeat) can take a process out of the list.
DRAIN_ENV = {"MOCK_STREAM_DELAY_MS": "20", "PROCESS_TTL_S": "30", "SHUTDOWN_GRACE_S": str(GRACE_S)}
# What each server's process returns after a SIGTERM it handled: Daphne exits 0; uvicorn re-raises the signal
# once it has shut down, so it dies of it (its documented behaviour, not ours).
EXIT_CODE = {"daphne": 0, "uvicorn": -signal.SIGTERM, "runserver": 0}
# Beyond the grace: interpreter shutdown and the server's own stop.
EXIT_MARGIN_S = 5

StartServer = Callable[..., DaphneServer]


@pytest.fixture
def start_server(user: Any) -> Iterator[StartServer]:
    """Server processes on the test database (and the flushed test Redis when asked); stopped after the test."""
    servers: list[DaphneServer] = []

    def start(server: str, *, redis: bool, **env: str) -> DaphneServer:
        extra = {"REDIS_URL": flushed_redis()} if redis else {}
        process = DaphneServer({**DRAIN_ENV, **extra, **env}, server=server)
        servers.append(process)
        return process.start()

    yield start
    for process in servers:
        process.stop()


def start_pair(start_server: StartServer, server: str, **env: str) -> tuple[DaphneServer, DaphneServer]:
    """Two processes on one Redis, started at once (each takes a few seconds to import Django)."""
    flushed_redis()
    with ThreadPoolExecutor(2) as pool:
        one, two = pool.map(lambda _: start_server(server, redis=True, **env), range(2))
    return one, two


@asynccontextmanager
async def socket(server: DaphneServer, token: str) -> AsyncIterator[SocketClient]:
    async with open_socket(f"{server.ws_url}?token={token}") as client:
        yield client


async def until_closed(client: SocketClient, timeout: float = 15) -> tuple[list[dict[str, Any]], Any]:
    """Every frame until the server closes the socket, and the close frame it sent (None if none)."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        try:
            while True:
                frame = await client.recv(timeout)
                if frame["type"] != "ping":
                    frames.append(frame)
        except websockets.ConnectionClosed as closed:
            return frames, closed.rcvd


def seqs(frames: list[dict[str, Any]]) -> list[int]:
    return [frame["seq"] for frame in frames if frame["type"] == "stream.chunk"]


def script_of(frames: list[dict[str, Any]]) -> str:
    return "".join(frame["text"] for frame in frames if frame["type"] == "stream.chunk")


async def saved(session_id: str) -> StreamSession:
    """The session's row once its end is saved: the writing process stores the terminal frame first, then the row,
    so a client served by another process can see the end a moment before the row does."""
    await wait_for(lambda: StreamSession.objects.filter(session_id=session_id).exclude(status="running").exists())
    return await database_sync_to_async(StreamSession.objects.get)(session_id=session_id)


async def status_of(server: DaphneServer, path: str, token: str | None = None) -> tuple[int, Any]:
    return await asyncio.to_thread(server.get, path, token)


async def exit_code(server: DaphneServer, within_s: float) -> int:
    return await asyncio.to_thread(server.wait_exit, within_s)


async def handed_over(server: DaphneServer, token: str, count: int, duration: int) -> list[dict[str, Any]]:
    """`count` streams on their own sockets, SIGTERM after each has 5 words: what each socket got, and its close."""
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(socket(server, token)) for _ in range(count)]
        started = [await client.generate(duration=duration) for client in clients]
        seen = [await client.chunks_up_to(5) for client in clients]
        server.sigterm()
        ends = await asyncio.gather(*(until_closed(client) for client in clients))
    return [
        {"started": first, "frames": before + after, "close": close}
        for first, before, (after, close) in zip(started, seen, ends, strict=True)
    ]


# ---------------------------------------------------------------- Redis: hand every client to another process


@pytest.mark.redis
@pytest.mark.parametrize("server", SERVERS)
async def test_sigterm_hands_every_stream_to_the_other_process(
    start_server: StartServer, token: str, server: str
) -> None:
    """SIGTERM during three streams: 1012, resume on the other process, every seq once, completed, A gone."""
    one, two = start_pair(start_server, server)
    staff = access_for(await database_sync_to_async(make_user)("operator", staff=True))
    _status, ready = await status_of(one, "/readyz")
    streams = await handed_over(one, token, count=3, duration=60)
    for stream in streams:
        close, frames = stream["close"], stream["frames"]
        assert (close.code, close.reason) == (1012, CLOSE_REASONS[CloseCode.SERVICE_RESTART]), close
        assert frames[-1]["type"] == "stream.chunk", "the stream ended before the drain handed it over"
        async with socket(two, token) as again:
            await again.resume(stream["started"]["session_id"], last_seq=frames[-1]["seq"])
            frames += await again.recv_until(TERMINAL)
        estimated = stream["started"]["estimated_words"]
        assert frames[-1]["type"] == "stream.completed", frames[-1]
        assert seqs(frames) == list(range(1, estimated + 1))
        row = await saved(stream["started"]["session_id"])
        assert (row.status, row.words, row.script) == ("completed", estimated, script_of(frames))
    assert await exit_code(one, GRACE_S + EXIT_MARGIN_S) == EXIT_CODE[server]
    status, stats = await status_of(two, "/api/websocket/stats", staff)
    assert status == 200, stats
    listed = {info["process_id"] for info in stats["processes"]}
    assert ready["process_id"] not in listed and len(listed) == 1
    assert "Traceback" not in one.log_text()


@pytest.mark.redis
async def test_stream_longer_than_the_grace_fails_shutting_down(start_server: StartServer, token: str) -> None:
    """Past SHUTDOWN_GRACE_S a stream ends shutting_down: resumed elsewhere, its words are all there and saved."""
    one, two = start_pair(start_server, "daphne", SHUTDOWN_GRACE_S="2")
    (stream,) = await handed_over(one, token, count=1, duration=120)  # 300 words: 6 s
    frames = stream["frames"]
    assert stream["close"].code == 1012
    async with socket(two, token) as again:
        await again.resume(stream["started"]["session_id"], last_seq=frames[-1]["seq"])
        frames += await again.recv_until(TERMINAL)
    end = frames[-1]
    assert end["type"] == "stream.failed" and end["error"]["code"] == "shutting_down", end
    assert seqs(frames) == list(range(1, end["seq"] + 1)) and end["seq"] < stream["started"]["estimated_words"]
    row = await saved(stream["started"]["session_id"])
    assert (row.status, row.error_code, row.words) == ("failed", "shutting_down", end["seq"])
    assert row.script == script_of(frames)
    assert await exit_code(one, 2 + EXIT_MARGIN_S) == 0


# ---------------------------------------------------------------- embedded: finish here, then 1001


async def refused_handshake(server: DaphneServer, token: str) -> int:
    """The HTTP status a new WebSocket handshake gets."""
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{server.ws_url}?token={token}", proxy=None, open_timeout=5):
            pass
    return int(refused.value.response.status_code)


async def until_not_ready(server: DaphneServer) -> dict[str, Any]:
    """The first /readyz answer that is not 200 (the signal is handled asynchronously: ask until it is)."""
    async with asyncio.timeout(5):
        while True:
            status, body = await status_of(server, "/readyz")
            if status != 200:
                assert status == 503, body
                return dict(body)
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("server", [*SERVERS, "runserver"])
async def test_embedded_sigterm_finishes_the_stream_then_closes_1001(
    start_server: StartServer, token: str, server: str
) -> None:
    """Embedded: SIGTERM mid-stream -> 503 and new sockets refused, the stream completes, then close 1001."""
    process = start_server(server, redis=False)
    async with socket(process, token) as client:
        started = await client.generate(duration=60)
        frames = await client.chunks_up_to(5)
        process.sigterm()
        readiness = await until_not_ready(process)
        refused = await refused_handshake(process, token)
        after, close = await until_closed(client)
    frames += after
    assert readiness["status"] == "draining"
    assert refused == 403
    assert seqs(after), "no word arrived after the new socket was refused: the stream had already ended"
    assert frames[-1]["type"] == "stream.completed", frames[-1]
    assert seqs(frames) == list(range(1, started["estimated_words"] + 1))
    assert (close.code, close.reason) == (1001, CLOSE_REASONS[CloseCode.GOING_AWAY])
    row = await saved(started["session_id"])
    assert (row.status, row.script) == ("completed", script_of(frames))
    assert await exit_code(process, GRACE_S + EXIT_MARGIN_S) == EXIT_CODE[server]


async def test_embedded_stream_past_the_grace_ends_shutting_down(start_server: StartServer, token: str) -> None:
    """Embedded, a stream longer than the grace: stream.failed shutting_down on its socket, then 1001; saved."""
    process = start_server("daphne", redis=False, SHUTDOWN_GRACE_S="1")
    async with socket(process, token) as client:
        started = await client.generate(duration=120)
        frames = await client.chunks_up_to(5)
        process.sigterm()
        after, close = await until_closed(client)
    frames += after
    end = frames[-1]
    assert end["type"] == "stream.failed" and end["error"]["code"] == "shutting_down", end
    assert seqs(frames) == list(range(1, end["seq"] + 1)) and end["seq"] < started["estimated_words"]
    assert close.code == 1001
    row = await saved(started["session_id"])
    assert (row.status, row.error_code, row.script) == ("failed", "shutting_down", script_of(frames))
    assert await exit_code(process, 1 + EXIT_MARGIN_S) == 0


# ---------------------------------------------------------------- the rolling-restart bench


@pytest.mark.redis
def test_rolling_restart_bench_quick_loses_nothing() -> None:
    """`python -m bench.rolling --quick`: both processes replaced under load; no stream loses its end or a word."""
    flushed_redis()  # fails under CI, skips elsewhere, when the test Redis is not there
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}  # its own SQLite database
    result = subprocess.run(
        [sys.executable, "-m", "bench.rolling", "--quick", "--redis-url", redis_test_url()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "ended without their terminal frame: 0 " in result.stdout
    assert "seq gaps: 0 " in result.stdout and "duplicates: 0 " in result.stdout
    assert len(set(re.findall(r"process :(\d+) got SIGTERM and exited 0 ", result.stdout))) == 2
    assert "other endings than completed or shutting_down: 0 " in result.stdout
    assert "processes in the cluster list at the end: 2 " in result.stdout
