"""Quotas over two real Daphne processes on one Redis: sockets per user (4429), running streams per user, the
daily word budget, and a kill -9'd process whose share of the quotas lapses by itself."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from streaming.protocol import CLOSE_REASONS, CloseCode
from tests import test_cluster
from tests.conftest import access_for
from tests.servers import DaphneServer
from tests.wsclient import GENERATE_DEFAULTS, SocketClient

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

# Two Daphne processes on the flushed test Redis, as tests/test_cluster.py starts them.
start_server = test_cluster.start_server
cluster = test_cluster.cluster

TERMINAL = {"stream.completed", "stream.failed", "stream.cancelled"}
LONG = 300  # seconds of script: 750 words at CLUSTER_ENV's 20 ms a word, still running while a test acts
LEASE_TTL_S = 3


async def attempt(stack: AsyncExitStack, server: DaphneServer, token: str) -> SocketClient | int:
    """Open a socket: the client once connection.established arrives, or the close code it was refused with."""
    conn = await stack.enter_async_context(connect(f"{server.ws_url}?token={token}", proxy=None, open_timeout=5))
    try:
        async with asyncio.timeout(5):
            frame = orjson.loads(await conn.recv())
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, closed
        assert closed.rcvd.reason == CLOSE_REASONS[CloseCode(closed.rcvd.code)]
        return closed.rcvd.code
    assert frame["type"] == "connection.established", frame
    client = SocketClient(conn)
    client.established = frame
    return client


async def admitted(stack: AsyncExitStack, server: DaphneServer, token: str) -> SocketClient:
    client = await attempt(stack, server, token)
    assert isinstance(client, SocketClient), f"refused with {client}"
    return client


async def ask(client: SocketClient, request_id: str, duration: int = LONG) -> dict[str, Any]:
    """Send a generate; its answer: stream.started or an error (frames of other streams skipped)."""
    await client.send({**GENERATE_DEFAULTS, "request_id": request_id, "duration": duration})
    while True:
        frame = await client.recv()
        if frame.get("request_id") == request_id:
            return frame


def next_midnight_iso() -> str:
    return f"{datetime.now(UTC).date() + timedelta(days=1)}T00:00:00Z"


async def test_21st_socket_across_two_processes_gets_4429(cluster: Any, token: str, other_user: Any) -> None:
    """Ten sockets on each process (limit 20): the 21st, on either, is closed with 4429; another user is not."""
    one, two = cluster
    async with AsyncExitStack() as stack:
        sockets = [await admitted(stack, server, token) for server in (one, two) for _ in range(10)]
        assert await attempt(stack, one, token) == 4429
        assert await attempt(stack, two, token) == 4429
        await admitted(stack, two, access_for(other_user))
        status, usage = await asyncio.to_thread(one.get, "/api/usage/", token)
        assert status == 200 and usage["sockets"] == {"open": 20, "limit": 20}
        # A socket closed on one process frees its place for the other at once, long before a lease would lapse.
        await sockets[-1].conn.close()
        async with asyncio.timeout(2):  # the server's disconnect lands a moment after the client's close
            while isinstance(again := await attempt(stack, one, token), int):
                await asyncio.sleep(0.05)
        assert again.established["type"] == "connection.established"


async def test_sixth_running_stream_across_two_processes(cluster: Any, token: str) -> None:
    """Three streams on one process and two on the other (limit 5): a sixth is too_many_streams; a cancel frees one."""
    one, two = cluster
    async with AsyncExitStack() as stack:
        producers = [await admitted(stack, server, token) for server in (one, one, one, two, two)]
        started = [await ask(client, f"s{n}") for n, client in enumerate(producers)]
        assert [frame["type"] for frame in started] == ["stream.started"] * 5
        extra = await admitted(stack, two, token)
        refused = await ask(extra, "sixth")
        assert (refused["type"], refused["code"]) == ("error", "too_many_streams"), refused
        status, usage = await asyncio.to_thread(two.get, "/api/usage/", token)
        assert status == 200 and usage["streams"] == {"running": 5, "limit": 5}
        await producers[0].send({"type": "cancel", "session_id": started[0]["session_id"]})
        await producers[0].recv_until({"stream.cancelled"})
        async with asyncio.timeout(2):  # the release lands on Redis a moment after stream.cancelled
            while (answer := await ask(extra, "sixth-again"))["type"] == "error":
                assert answer["code"] == "too_many_streams", answer
                await asyncio.sleep(0.05)
        assert answer["type"] == "stream.started"


@pytest.mark.parametrize("cluster", [{"USER_DAILY_WORD_LIMIT": "100", "MOCK_STREAM_DELAY_MS": "0"}], indirect=True)
async def test_daily_budget_across_two_processes(cluster: Any, token: str, other_user: Any) -> None:
    """75 words on each process (budget 100): the next generate, on either, is quota_exceeded with resets_at."""
    one, two = cluster
    async with AsyncExitStack() as stack:
        first, second = await admitted(stack, one, token), await admitted(stack, two, token)
        for client in (first, second):  # the second starts within budget (75 < 100) and runs to its end
            assert (await ask(client, "write", duration=30))["type"] == "stream.started"
            end = (await client.recv_until(TERMINAL))[-1]
            assert (end["type"], end["words"]) == ("stream.completed", 75)
        for client in (first, second):
            refused = await ask(client, "more", duration=5)
            assert refused == {
                "type": "error",
                "code": "quota_exceeded",
                "message": "You have used today's budget of 100 words; it resets at midnight UTC.",
                "resets_at": next_midnight_iso(),
                "request_id": "more",
            }
        status, usage = await asyncio.to_thread(two.get, "/api/usage/", token)
        assert status == 200
        assert usage["words"] == {"used": 150, "limit": 100, "resets_at": next_midnight_iso()}
        bob = await admitted(stack, one, access_for(other_user))
        assert (await ask(bob, "bobs", duration=5))["type"] == "stream.started"


@pytest.mark.parametrize(
    "cluster",
    [{"QUOTA_LEASE_TTL_S": str(LEASE_TTL_S), "WS_MAX_CONNECTIONS_PER_USER": "3", "WS_MAX_STREAMS_PER_USER": "1"}],
    indirect=True,
)
async def test_leases_of_a_killed_process_lapse_within_their_ttl(cluster: Any, token: str) -> None:
    """kill -9 of a process holding two sockets and a stream: the other process admits both again within seconds."""
    one, two = cluster
    async with AsyncExitStack() as stack:
        doomed = [await admitted(stack, one, token), await admitted(stack, one, token)]
        assert (await ask(doomed[0], "doomed"))["type"] == "stream.started"
        survivor = await admitted(stack, two, token)
        assert await attempt(stack, two, token) == 4429
        refused = await ask(survivor, "while-alive", duration=5)
        assert (refused["type"], refused["code"]) == ("error", "too_many_streams")
        await asyncio.to_thread(one.kill9)
        killed_at = time.monotonic()
        async with asyncio.timeout(LEASE_TTL_S + 3):  # a lapse has no event to wait on: ask until it happened
            while (answer := await ask(survivor, "after-kill", duration=5))["type"] == "error":
                assert answer["code"] == "too_many_streams", answer
                await asyncio.sleep(0.1)
            while isinstance(await attempt(stack, two, token), int):
                await asyncio.sleep(0.1)
        freed_after = time.monotonic() - killed_at
    assert answer["type"] == "stream.started"
    assert freed_after < LEASE_TTL_S + 2, f"the dead process's leases took {freed_after:.1f}s to lapse"
