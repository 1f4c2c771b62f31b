"""Two real Daphne processes on one Redis: resume, watch and cancel across processes, kill -9, stats, outages."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis
import websockets
from channels.db import database_sync_to_async

from streaming import protocol
from tests.conftest import access_for, make_user, saved_row
from tests.redisutil import flushed_redis, redis_server_binary
from tests.servers import DaphneServer, free_port
from tests.wsclient import SocketClient, open_socket

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

TERMINAL = protocol.TERMINAL_TYPES
# Small enough to keep tests quick, large enough that a stream is still running while a test acts on it.
CLUSTER_ENV = {"MOCK_STREAM_DELAY_MS": "20", "PROCESS_TTL_S": "3"}


@asynccontextmanager
async def socket(server: DaphneServer, token: str) -> AsyncIterator[SocketClient]:
    async with open_socket(f"{server.ws_url}?token={token}") as client:
        yield client


def seqs(frames: list[dict[str, Any]]) -> list[int]:
    return [frame["seq"] for frame in frames if frame["type"] == "stream.chunk"]


StartServer = Callable[..., DaphneServer]


@pytest.fixture
def start_server(user: Any) -> Iterator[StartServer]:
    """Daphne processes on the flushed test Redis and the test database (shared: `user` is transactional)."""
    url = flushed_redis()
    servers: list[DaphneServer] = []

    def start(**env: str) -> DaphneServer:
        server = DaphneServer({"REDIS_URL": url, **CLUSTER_ENV, **env})
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        if server.process is not None and server.process.poll() is None:
            server.process.terminate()
    for server in servers:
        server.stop()


@pytest.fixture
def cluster(start_server: StartServer, request: pytest.FixtureRequest) -> tuple[DaphneServer, DaphneServer]:
    """Two processes; parametrize indirectly with a dict to give them more environment."""
    env = getattr(request, "param", {})
    with ThreadPoolExecutor(2) as pool:  # start both at once: each takes a few seconds to import Django
        one, two = pool.map(lambda _: start_server(**env), range(2))
    return one, two


async def test_resume_on_other_process_after_drop(cluster: Any, token: str) -> None:
    """Dropped after seq 5 on one process, resumed on the other: every later seq exactly once, in order."""
    one, two = cluster
    async with socket(one, token) as first:
        started = await first.generate()
        await first.chunks_up_to(5)
    async with socket(two, token) as second:
        await second.resume(started["session_id"], last_seq=5)
        frames = await second.recv_until(TERMINAL)
    assert frames[-1]["type"] == "stream.completed", frames[-1]
    assert seqs(frames) == list(range(6, started["estimated_words"] + 1))
    assert frames[-1]["seq"] == started["estimated_words"]


async def test_second_tab_on_other_process_watches_live(cluster: Any, token: str) -> None:
    """A tab on the other process resuming from 0 gets every frame the producing tab gets, while it runs."""
    one, two = cluster
    async with socket(one, token) as producer, socket(two, token) as tab:
        started = await producer.generate()
        await tab.resume(started["session_id"], last_seq=0)
        first_watched = await tab.recv_until({"stream.chunk"})
        own = await producer.recv_until(TERMINAL)
        watched = first_watched + await tab.recv_until(TERMINAL)
    assert seqs(first_watched) == [1]
    assert watched[-1]["seq"] - seqs(own)[0] > 5, "the tab only caught up after the end"
    assert seqs(watched) == list(range(1, started["estimated_words"] + 1))
    assert watched[-len(own) :] == own


async def test_cancel_from_other_process(cluster: Any, token: str) -> None:
    """cancel on the other process stops the stream within a second; producer, tab and canceller get cancelled."""
    one, two = cluster
    async with socket(one, token) as producer, socket(two, token) as tab, socket(two, token) as canceller:
        started = await producer.generate(duration=120)
        await tab.resume(started["session_id"], last_seq=0)
        await tab.chunks_up_to(3)
        sent_at = time.monotonic()
        await canceller.send({"type": "cancel", "session_id": started["session_id"]})
        produced = await producer.recv_until(TERMINAL, timeout=2)
        stopped_after = time.monotonic() - sent_at
        watched, cancelled = await asyncio.gather(tab.recv_until(TERMINAL), canceller.recv_until(TERMINAL))
        assert await producer.silent()
    assert stopped_after < 1.0
    ends = [produced[-1], watched[-1], cancelled[-1]]
    assert {end["type"] for end in ends} == {"stream.cancelled"}
    assert len({end["seq"] for end in ends}) == 1
    assert seqs(produced)[-1] == ends[0]["seq"] < started["estimated_words"]
    assert seqs(cancelled) == []


async def test_kill9_of_producer_fails_with_worker_lost(cluster: Any, token: str) -> None:
    """kill -9 of the producing process: the watcher elsewhere, and a later resume, get worker_lost with the words."""
    one, two = cluster
    async with socket(two, token) as watcher:
        async with socket(one, token) as producer:
            started = await producer.generate(duration=120)
            await watcher.resume(started["session_id"], last_seq=0)
            seen = await watcher.chunks_up_to(10)
            one.kill9()
        watched = seen + await watcher.recv_until(TERMINAL, timeout=15)
    end = watched[-1]
    assert end["type"] == "stream.failed" and end["error"]["code"] == "worker_lost", end
    assert seqs(watched) == list(range(1, end["seq"] + 1)) and end["seq"] >= 10
    async with socket(two, token) as later:
        await later.resume(started["session_id"], last_seq=0)
        replayed = await later.recv_until(TERMINAL)
    assert replayed == watched
    row = await saved_row(started["session_id"])
    assert (row.status, row.error_code, row.words) == ("failed", "worker_lost", end["seq"])
    assert row.script == "".join(frame["text"] for frame in watched if frame["type"] == "stream.chunk")


async def test_resume_after_completion_on_other_process(cluster: Any, token: str) -> None:
    """After the end, resume from 0 on the other process replays every chunk and the same terminal frame."""
    one, two = cluster
    async with socket(one, token) as first:
        started = await first.generate()
        original = await first.recv_until(TERMINAL)
    async with socket(two, token) as second:
        await second.resume(started["session_id"], last_seq=0)
        replayed = await second.recv_until(TERMINAL)
        assert await second.silent()
    assert replayed == original


@pytest.mark.parametrize("cluster", [{"STREAM_RETENTION_S": "1", "MOCK_STREAM_DELAY_MS": "0"}], indirect=True)
async def test_resume_expired_after_retention(cluster: Any, token: str) -> None:
    """After the retention window, the owner's resume on the other process gets resume_expired."""
    one, two = cluster
    async with socket(one, token) as first:
        started = await first.generate()
        await first.recv_until(TERMINAL)
    async with socket(two, token) as second:
        async with asyncio.timeout(5):  # expiry has no event to wait on: ask until the store has forgotten it
            while True:
                await second.resume(started["session_id"], last_seq=0)
                frames = await second.recv_until(TERMINAL | {"error"})
                if frames[-1]["type"] == "error":
                    break
                await asyncio.sleep(0.2)
    assert frames[-1]["code"] == "resume_expired", frames[-1]


async def test_other_users_session_is_not_found(cluster: Any, token: str, other_user: Any) -> None:
    """On the other process, another user's running session id is answered exactly like an unknown one."""
    one, two = cluster
    async with socket(one, token) as alice, socket(two, access_for(other_user)) as bob:
        started = await alice.generate(duration=120)
        answers = []
        for session_id in (started["session_id"], str(uuid.uuid4())):
            await bob.resume(session_id)
            answers.append(await bob.recv())
            await bob.send({"type": "cancel", "session_id": session_id})
            answers.append(await bob.recv())
    assert answers[0] == answers[1] == answers[2] == answers[3]
    assert answers[0]["type"] == "error" and answers[0]["code"] == "not_found"


async def test_stats_count_both_processes(cluster: Any, token: str, transactional_db: Any) -> None:
    """/api/websocket/stats counts connections on both processes, with a per-process breakdown."""
    one, two = cluster
    staff = access_for(await database_sync_to_async(make_user)("operator", staff=True))
    async with socket(one, token), socket(one, token), socket(two, token):
        async with asyncio.timeout(5):  # heartbeats refresh every PROCESS_TTL_S / 3: no event to wait on
            while True:
                status, body = await asyncio.to_thread(two.get, "/api/websocket/stats", staff)
                assert status == 200, body
                # Live counts come from heartbeats, totals from connection rows (written in batches): both settle.
                if body["connections"]["active"] == 3 and body["connections"]["total"] >= 3:
                    break
                await asyncio.sleep(0.1)
    per_process = sorted(info["connections"] for info in body["processes"])
    assert per_process == [1, 2]
    assert len({info["process_id"] for info in body["processes"]}) == 2
    assert body["connections"]["total"] >= 3 and body["channel_layer"] == "redis"


class RedisProcess:
    """A redis-server of the test's own on a free port, with nothing persisted: stop it, start it again."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 5
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "the throwaway redis-server did not start"
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=5)


@pytest.fixture
def throwaway_redis() -> Iterator[RedisProcess]:
    server = RedisProcess(redis_server_binary())
    server.start()
    yield server
    server.stop()


async def readyz_status(server: DaphneServer) -> int:
    status, _body = await asyncio.to_thread(server.get, "/readyz")
    return status


async def test_redis_outage_then_recovery(start_server: StartServer, throwaway_redis: RedisProcess, token: str) -> None:
    """Redis stopped -> /readyz 503; back -> 200 within 5 s, and a new stream runs to completion."""
    server = start_server(REDIS_URL=throwaway_redis.url, MOCK_STREAM_DELAY_MS="0")
    assert await readyz_status(server) == 200
    throwaway_redis.stop()
    async with asyncio.timeout(5):  # readiness has no event: ask until it changes
        while await readyz_status(server) != 503:
            await asyncio.sleep(0.1)
    assert await readyz_status(server) == 503
    await asyncio.to_thread(throwaway_redis.start)
    async with asyncio.timeout(5):
        while await readyz_status(server) != 200:
            await asyncio.sleep(0.1)
    async with socket(server, token) as client:
        started = await client.generate()
        frames = await client.recv_until(TERMINAL)
    assert frames[-1]["type"] == "stream.completed", frames[-1]
    assert seqs(frames) == list(range(1, started["estimated_words"] + 1))


async def test_stream_in_flight_through_redis_restart_is_not_lost(
    start_server: StartServer, throwaway_redis: RedisProcess, token: str
) -> None:
    """A stream running while Redis restarts never hangs: its socket ends or carries on, and resuming gets the rest."""
    server = start_server(REDIS_URL=throwaway_redis.url)
    frames: list[dict[str, Any]] = []
    async with socket(server, token) as client:
        started = await client.generate(duration=60)
        frames += await client.chunks_up_to(5)
        await asyncio.to_thread(throwaway_redis.stop)
        try:  # the socket either carries on to the end or is closed (the channel layer lost Redis): never silent
            frames += await client.recv_until(TERMINAL, timeout=10)
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1011, closed
    await asyncio.to_thread(throwaway_redis.start)
    if frames[-1]["type"] not in TERMINAL:
        async with socket(server, token) as again:
            await again.resume(started["session_id"], last_seq=frames[-1]["seq"])
            frames += await again.recv_until(TERMINAL)
    assert frames[-1]["type"] == "stream.completed", frames[-1]
    assert seqs(frames) == list(range(1, started["estimated_words"] + 1))
