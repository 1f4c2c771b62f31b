"""A real server process: a closed WebSocket connection is freed by reference counting, not the cycle collector.

With a raised young-generation GC threshold a full collection is rare, so whatever only the cycle collector frees
piles up (before the cycles were broken, a soak of 10,000 sessions grew Daphne by 38 MB, uvicorn by 32 MB).
The server keeps what its collector finds (tests/e2e_views.py `garbage`) and the test counts it after sockets
that ended in each way.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from streaming import protocol
from tests.servers import DaphneServer
from tests.wsclient import open_socket

pytestmark = pytest.mark.e2e

SOCKETS = 21
REJECTED = 5
# Objects only a WebSocket connection makes: none of them may be left to the cycle collector.
CONNECTION_TYPES = {
    "daphne": ("autobahn.", "daphne.ws_protocol:", "twisted.web.http:HTTPChannel", "twisted.internet.defer:"),
    "uvicorn": ("uvicorn.protocols.websockets.", "websockets."),
}
OURS = ("streaming.", "accounts.", "channels.")
# What remains is Django's: ~90 objects per plain HTTP request (the test's own: ASGIRequest <-> its messages
# storage, and the handler's task <-> RequestAborted's traceback) and 3 per connection (the select_related query
# of the socket's user: SQLCompiler.get_select's recursive closure). Before the fix, ~70 more per socket.
MOST_PER_SOCKET = 5
MOST_PER_HTTP_REQUEST = 120


def post(server: DaphneServer, path: str) -> dict[str, Any]:
    request = urllib.request.Request(f"{server.http_url}{path}", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


@pytest.mark.parametrize("command", ["daphne", "uvicorn"])
async def test_closed_connections_leave_no_cycles(django_db_setup: Any, token: str, command: str) -> None:
    """Sockets closed by the client, closed by the server, dropped without a close frame or refused at the
    handshake leave no garbage."""
    with DaphneServer(server=command) as server:  # its own process: it keeps every cycle it finds from now on
        await asyncio.to_thread(post, server, "/test/garbage?start=1")
        requests = 1
        for n in range(SOCKETS):
            async with open_socket(f"{server.ws_url}?token={token}") as socket:
                await socket.generate(request_id=f"r{n}", duration=20)
                await socket.recv_until(set(protocol.TERMINAL_TYPES))
                if n % 3 == 1:
                    await asyncio.to_thread(post, server, "/test/drop-sockets")
                    requests += 1
                    with pytest.raises(ConnectionClosed):
                        await socket.recv_until(set())
                elif n % 3 == 2:
                    socket.conn.transport.abort()
        for _ in range(REJECTED):
            with pytest.raises(InvalidStatus):  # the origin check refuses the handshake (403)
                async with connect(server.ws_url, proxy=None, origin="http://evil.example", open_timeout=5):
                    pass
        found = await asyncio.to_thread(post, server, "/test/garbage")
    assert found["live"] == 0, found
    left = {name: n for name, n in found["types"].items() if name.startswith((*CONNECTION_TYPES[command], *OURS))}
    assert not left, left
    # Python 3.11's socket transport is a cycle of its own (its bound read callback) unless streaming/asyncio_compat
    # breaks it when the connection is lost; the test's plain HTTP requests (uvicorn's h11 cycle) may keep theirs.
    assert found["types"].get("asyncio.selector_events:_SelectorSocketTransport", 0) <= requests, found
    assert found["total"] <= (SOCKETS + REJECTED) * MOST_PER_SOCKET + requests * MOST_PER_HTTP_REQUEST, found
