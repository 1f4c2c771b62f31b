"""End to end: a real Daphne process and real sockets (the `websockets` client), as a creator's app would see it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from channels.db import database_sync_to_async
from rest_framework_simplejwt.tokens import RefreshToken
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from streaming import protocol
from tests.conftest import access_for, make_user
from tests.servers import DaphneServer
from tests.wsclient import SocketClient, open_socket

pytestmark = pytest.mark.e2e

TERMINAL = protocol.TERMINAL_TYPES


@pytest.fixture(scope="module")
def daphne(django_db_setup: Any) -> Iterator[DaphneServer]:
    """One Daphne for the module; words 5 ms apart so a long script is still running when cancelled."""
    with DaphneServer(env={"MOCK_STREAM_DELAY_MS": "5"}) as server:
        yield server


@asynccontextmanager
async def opened(server: DaphneServer, query: str = "", **options: Any) -> AsyncIterator[SocketClient]:
    """A socket that has received connection.established."""
    async with open_socket(server.ws_url + query, **options) as socket:
        yield socket


async def close_code_of(server: DaphneServer, query: str = "", **options: Any) -> tuple[int | None, list[Any]]:
    """Open a socket and read until the server closes it: (close code, frames received before it)."""
    frames = []
    async with connect(server.ws_url + query, proxy=None, open_timeout=5, **options) as conn:
        try:
            async with asyncio.timeout(5):
                async for message in conn:
                    frames.append(message)
        except ConnectionClosed:
            pass
        return (conn.close_code, frames)


# ---------------------------------------------------------------- auth


async def test_query_token(daphne: DaphneServer, user: Any, token: str) -> None:
    """?token=<access> authenticates over a real socket."""
    async with opened(daphne, f"?token={token}") as socket:
        assert socket.established["user"] == {"id": user.pk, "username": "alice"}


async def test_subprotocol_token(daphne: DaphneServer, user: Any, token: str) -> None:
    """A bearer subprotocol authenticates, and Daphne answers creatornexus.v1 only."""
    async with opened(daphne, subprotocols=["creatornexus.v1", f"bearer.{token}"]) as socket:
        assert socket.conn.subprotocol == "creatornexus.v1"
        assert socket.established["user"]["username"] == "alice"


async def test_authorization_header(daphne: DaphneServer, user: Any, token: str) -> None:
    """Authorization: Bearer authenticates over a real socket."""
    async with opened(daphne, additional_headers={"Authorization": f"Bearer {token}"}) as socket:
        assert socket.established["user"]["username"] == "alice"


@pytest.mark.parametrize("kind", ["missing", "malformed", "refresh"])
async def test_bad_token_closed_4401(daphne: DaphneServer, user: Any, kind: str) -> None:
    """A missing, malformed or refresh token: the socket opens, then closes with 4401 and no frame."""
    query = {"missing": "", "malformed": "?token=abc.def.ghi", "refresh": f"?token={RefreshToken.for_user(user)}"}[kind]
    assert await close_code_of(daphne, query) == (4401, [])


async def test_foreign_origin_refused(daphne: DaphneServer, token: str) -> None:
    """A browser Origin that is not allowed gets 403 at the handshake."""
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{daphne.ws_url}?token={token}", proxy=None, origin="https://evil.example"):
            pass
    assert refused.value.response.status_code == 403


async def test_token_not_in_server_log(daphne: DaphneServer, token: str) -> None:
    """After sockets authenticated by query and header, the server's own log holds no token."""
    async with opened(daphne, f"?token={token}"):
        pass
    await close_code_of(daphne, f"?token={token}x")
    assert token not in daphne.log_path.read_text(errors="replace")


# ---------------------------------------------------------------- protocol


async def test_ping_pong(daphne: DaphneServer, token: str) -> None:
    """ping -> pong with the same id and a server time."""
    async with opened(daphne, f"?token={token}") as socket:
        await socket.send({"type": "ping", "id": 5})
        pong = await socket.recv()
        assert (pong["type"], pong["id"]) == ("pong", 5) and pong["server_time"].endswith("Z")


async def test_full_stream(daphne: DaphneServer, token: str) -> None:
    """A full stream: started, chunks with contiguous seq and rising progress, completed with the count."""
    async with opened(daphne, f"?token={token}") as socket:
        started = await socket.generate(duration=20)
        frames = await socket.recv_until(TERMINAL)
    chunks, end = frames[:-1], frames[-1]
    assert end["type"] == "stream.completed"
    assert [chunk["seq"] for chunk in chunks] == list(range(1, end["seq"] + 1))
    assert {chunk["session_id"] for chunk in chunks} == {started["session_id"]}
    progress = [chunk["progress"] for chunk in chunks]
    assert progress == sorted(progress) and 0 <= progress[0] and progress[-1] <= 1


async def test_cancel(daphne: DaphneServer, token: str) -> None:
    """cancel mid-stream -> stream.cancelled with the last seq sent, then silence."""
    async with opened(daphne, f"?token={token}") as socket:
        started = await socket.generate(platform="youtube", duration=1200)
        for _ in range(3):
            assert (await socket.recv())["type"] == "stream.chunk"
        await socket.send({"type": "cancel", "session_id": started["session_id"]})
        frames = await socket.recv_until(TERMINAL)
        assert frames[-1] == {"type": "stream.cancelled", "session_id": started["session_id"], "seq": len(frames) + 2}
        with pytest.raises(TimeoutError):
            await socket.recv(timeout=0.1)


async def test_five_users_at_once(daphne: DaphneServer, transactional_db: Any) -> None:
    """Five users streaming at once each see only their own session's frames."""
    users = [await database_sync_to_async(make_user)(f"e2e{n}") for n in range(5)]

    async def stream_for(n: int, user: Any) -> list[dict[str, Any]]:
        async with opened(daphne, f"?token={access_for(user)}") as socket:
            await socket.generate(request_id=f"u{n}", topic=f"topic {n}", duration=20)
            return await socket.recv_until(TERMINAL)

    results = await asyncio.gather(*(stream_for(n, user) for n, user in enumerate(users)))
    sessions = set()
    for frames in results:
        (session_id,) = {frame["session_id"] for frame in frames}
        sessions.add(session_id)
        assert frames[-1]["type"] == "stream.completed"
        assert [f["seq"] for f in frames[:-1]] == list(range(1, len(frames)))
    assert len(sessions) == 5


# ---------------------------------------------------------------- bad input

BAD_INPUT = [
    ("not json", "bad_request"),
    ("[" * 50_000, "bad_request"),
    ("[1]", "bad_request"),
    ('{"type": "explode"}', "unknown_type"),
    ('{"type":"generate","topic":"x","platform":"tiktok","duration":601}', "bad_request"),
    ('{"type":"cancel","session_id":"00000000-0000-0000-0000-000000000000"}', "not_found"),
    ('{"type":"ping","pad":"' + "x" * 70 * 1024 + '"}', "payload_too_large"),
]


@pytest.mark.parametrize(("text", "code"), BAD_INPUT, ids=lambda v: repr(v)[:24])
async def test_bad_input_keeps_connection(daphne: DaphneServer, token: str, text: str, code: str) -> None:
    """Bad input over a real socket gets one error frame, and the same connection answers a ping after it."""
    async with opened(daphne, f"?token={token}") as socket:
        await socket.conn.send(text)
        error = await socket.recv()
        assert (error["type"], error["code"]) == ("error", code)
        await socket.send({"type": "ping", "id": "after"})
        assert (await socket.recv())["id"] == "after"


async def test_binary_frame_keeps_connection(daphne: DaphneServer, token: str) -> None:
    """A binary frame gets bad_request and the connection stays open."""
    async with opened(daphne, f"?token={token}") as socket:
        await socket.conn.send(b'{"type":"ping"}')
        assert (await socket.recv())["code"] == "bad_request"
        await socket.send({"type": "ping", "id": "after"})
        assert (await socket.recv())["type"] == "pong"


async def test_heartbeat_then_idle_close_4408(django_db_setup: Any, token: str) -> None:
    """A quiet client gets a server ping, then is closed with 4408 once the connection timeout passes."""
    env = {"WS_HEARTBEAT_INTERVAL_S": "0.5", "WS_CONNECTION_TIMEOUT_S": "2.5"}
    with DaphneServer(env=env) as server:
        async with opened(server, f"?token={token}") as socket:
            assert await socket.recv() == {"type": "ping", "id": 1}
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(10):
                    while True:
                        await socket.conn.recv()
            assert socket.conn.close_code == 4408
