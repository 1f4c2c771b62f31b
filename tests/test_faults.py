"""Faults a healthy cluster must shrug off: a stalled database, Redis down at a stream's start, a process
declared dead while it was only stalled (fencing). Real Daphne processes, real Redis, real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from channels.db import database_sync_to_async
from django.conf import settings

from streaming.models import StreamSession
from tests import servers
from tests.test_cluster import (  # noqa: F401  (fixtures)
    TERMINAL,
    RedisProcess,
    StartServer,
    cluster,
    seqs,
    socket,
    start_server,
    throwaway_redis,
)

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

STALL_S = 15


def texts(frames: list[dict[str, Any]]) -> str:
    return "".join(frame["text"] for frame in frames if frame["type"] == "stream.chunk")


@contextmanager
def database_stalled() -> Iterator[None]:
    """Every query on the stream tables waits (an exclusive lock held by another session) until the block ends."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        url = servers.test_database_url().replace("postgres://", "postgresql://")
        with psycopg.connect(url, autocommit=False) as conn:
            conn.execute("LOCK TABLE streaming_connection, streaming_streamsession IN ACCESS EXCLUSIVE MODE")
            held.set()
            release.wait(STALL_S * 3)
            conn.rollback()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert held.wait(10), "could not lock the stream tables"
    try:
        yield
    finally:
        release.set()
        holder.join(10)


@pytest.fixture
def postgres() -> None:
    if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        if os.environ.get("CI"):
            pytest.fail("CI runs on PostgreSQL: the database stall test may not skip", pytrace=False)
        pytest.skip("the database stall test needs PostgreSQL (DATABASE_URL=postgres://...)")


@pytest.mark.parametrize("cluster", [{"MOCK_STREAM_DELAY_MS": "40"}], indirect=True)
async def test_database_stall_does_not_fail_healthy_streams(
    cluster: Any,  # noqa: F811
    token: str,
    postgres: None,
) -> None:
    """15 s without a database: words keep flowing to the socket and through Redis to the other process,
    nobody declares the writer dead (PROCESS_TTL_S is 3), and the stream completes and is saved after."""
    one, two = cluster
    async with socket(one, token) as producer, socket(two, token) as watcher:
        started = await producer.generate(duration=240)  # 600 words at 40 ms: ~24 s, outlasting the stall
        await watcher.resume(started["session_id"], last_seq=0)
        before = await watcher.chunks_up_to(5)
        during: list[dict[str, Any]] = []
        with database_stalled():
            stalled_at = time.monotonic()
            while time.monotonic() - stalled_at < STALL_S:  # the stall lasts STALL_S; the watcher reads all along
                during.append(await watcher.recv(timeout=2))
                assert during[-1]["type"] not in TERMINAL, during[-1]
        watched = before + during + await watcher.recv_until(TERMINAL, timeout=30)
        own = await producer.recv_until(TERMINAL, timeout=30)
    assert len(seqs(during)) > 200, "words stopped flowing through Redis while the database stalled"
    assert watched[-1]["type"] == own[-1]["type"] == "stream.completed", (watched[-1], own[-1])
    assert seqs(watched) == list(range(1, started["estimated_words"] + 1))
    row = await database_sync_to_async(StreamSession.objects.get)(session_id=started["session_id"])
    assert row.status == "completed" and row.script == texts(watched)


async def test_stream_started_while_redis_down_is_reachable_once_it_is_back(
    start_server: StartServer,  # noqa: F811
    throwaway_redis: RedisProcess,  # noqa: F811
    token: str,
) -> None:
    """Started while Redis was down: once Redis is back, the other process can resume and cancel it."""
    one = start_server(REDIS_URL=throwaway_redis.url, MOCK_STREAM_DELAY_MS="30")
    two = start_server(REDIS_URL=throwaway_redis.url, MOCK_STREAM_DELAY_MS="30")
    async with socket(one, token) as producer:
        await asyncio.to_thread(throwaway_redis.stop)
        started = await producer.generate(duration=300)
        await producer.chunks_up_to(3)
        await asyncio.to_thread(throwaway_redis.start)  # back, and empty
        async with socket(two, token) as other:
            async with asyncio.timeout(10):  # the writer's next flush writes the session: ask until it is there
                while True:
                    await other.resume(started["session_id"], last_seq=0)
                    first = await other.recv()
                    if first["type"] == "stream.chunk":
                        break
                    assert first["type"] == "error" and first["code"] in {"not_found", "resume_expired"}, first
                    await asyncio.sleep(0.2)
            await other.send({"type": "cancel", "session_id": started["session_id"]})
            cancelled = [first, *await other.recv_until(TERMINAL)]
        produced = await producer.recv_until(TERMINAL)
    assert cancelled[-1]["type"] == produced[-1]["type"] == "stream.cancelled", (cancelled[-1], produced[-1])
    assert seqs(cancelled) == list(range(1, cancelled[-1]["seq"] + 1))


@pytest.mark.parametrize("cluster", [{"MOCK_STREAM_DELAY_MS": "20"}], indirect=True)
async def test_process_declared_dead_while_stalled_is_fenced(cluster: Any, token: str) -> None:  # noqa: F811
    """A process frozen past PROCESS_TTL_S (SIGSTOP) has its stream ended as worker_lost by the other; when it
    wakes it stops that stream, tells its own socket the same end, and overwrites neither Redis nor the row."""
    one, two = cluster
    assert one.process is not None
    async with socket(one, token) as producer, socket(two, token) as watcher:
        started = await producer.generate(duration=300)
        await watcher.resume(started["session_id"], last_seq=0)
        await producer.chunks_up_to(5)
        one.process.send_signal(signal.SIGSTOP)
        try:
            watched = await watcher.recv_until(TERMINAL, timeout=20)
        finally:
            one.process.send_signal(signal.SIGCONT)
        produced = await producer.recv_until(TERMINAL, timeout=10)
        assert await producer.silent()
    lost = watched[-1]
    assert lost["type"] == "stream.failed" and lost["error"]["code"] == "worker_lost", lost
    assert produced[-1] == lost, "the woken owner must adopt the stored end, not write its own"
    row = await database_sync_to_async(StreamSession.objects.get)(session_id=started["session_id"])
    assert (row.status, row.error_code, row.words) == ("failed", "worker_lost", lost["seq"])
    async with socket(two, token) as later:
        await later.resume(started["session_id"], last_seq=0)
        replayed = await later.recv_until(TERMINAL)
    assert replayed[-1] == lost and seqs(replayed) == list(range(1, lost["seq"] + 1))
    assert texts(replayed) == row.script


async def test_embedded_restart_ends_the_rows_the_crashed_process_left_running(token: str) -> None:
    """Embedded mode keeps words in memory: after kill -9, the next process marks the lost row failed at start."""
    with servers.DaphneServer(env={"MOCK_STREAM_DELAY_MS": "20"}) as crashed:
        async with socket(crashed, token) as client:
            started = await client.generate(duration=300)
            await client.chunks_up_to(3)
            crashed.kill9()
    session_id = started["session_id"]
    assert (await database_sync_to_async(row_status)(session_id)) == ("running", "")
    with servers.DaphneServer():  # no client needed: the sweep runs when the process starts
        async with asyncio.timeout(10):  # rows have no event to wait on: ask until it changed
            while (await database_sync_to_async(row_status)(session_id))[0] == "running":
                await asyncio.sleep(0.1)
    assert (await database_sync_to_async(row_status)(session_id)) == ("failed", "worker_lost")


def row_status(session_id: str) -> tuple[str, str]:
    row = StreamSession.objects.get(session_id=session_id)
    return row.status, row.error_code
