"""WebSocket paths on a real Daphne process: the stream socket at each of its paths, any other path refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from streaming import protocol
from tests.conftest import wait_for
from tests.servers import DaphneServer
from tests.wsclient import open_socket

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def daphne(django_db_setup: Any) -> Iterator[DaphneServer]:
    """A Daphne of its own, so its log holds only what these tests did."""
    with DaphneServer() as server:
        yield server


def ws_url(server: DaphneServer, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


@pytest.mark.parametrize("path", ["/ws?token=", "/ws/?token=", "/ws/stream?token=", "/ws/stream/?token="])
async def test_stream_paths_stream_a_script(daphne: DaphneServer, token: str, path: str) -> None:
    """Each stream path (`/ws?token=` as the Node service's clients connect) streams a script to its end."""
    async with open_socket(ws_url(daphne, path + token)) as socket:
        await socket.generate(duration=10)
        frames = await socket.recv_until(protocol.TERMINAL_TYPES)
    end = frames[-1]
    assert end["type"] == "stream.completed"
    assert [frame["seq"] for frame in frames[:-1]] == list(range(1, end["seq"] + 1))


@pytest.mark.parametrize("path", ["/nope", "/ws/other", "/", "/ws/stream/more", "/wss", "/api/ws"])
async def test_other_paths_refused_without_a_traceback(daphne: DaphneServer, token: str, path: str) -> None:
    """Any other path fails the handshake with 403, and the server logs no traceback for it."""
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(daphne, f"{path}?token={token}"), proxy=None, open_timeout=5):
            pass
    assert refused.value.response.status_code == 403
    await wait_for(lambda: f'"WSREJECT {path}"' in daphne.log_messages())  # Daphne logs it just after answering
    log = daphne.log_messages()
    assert "Traceback" not in log and "Exception inside application" not in log
