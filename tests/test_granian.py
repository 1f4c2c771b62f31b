"""granian 2.8 (measured in bench/, documented in docs/deploy.md): what keeps it from being the recommended server.

Found by the log-redaction test: under granian a `websocket.close` the application sends while another of its
tasks awaits `receive()` (a Channels consumer always does) is held until that receive returns, i.e. until the
client sends something. So a server-initiated close (4401 after a refused token, 4408 idle, 4413 too slow)
never reaches a client that only listens. Strict xfail: it starts failing the day granian delivers it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import websockets

from tests.servers import DaphneServer

pytestmark = pytest.mark.e2e


@pytest.mark.xfail(strict=True, raises=TimeoutError, reason="granian holds websocket.close behind a pending receive")
async def test_refused_token_gets_4401_under_granian(transactional_db: Any) -> None:
    """A socket with a bad token is accepted and closed at once with 4401, as under Daphne and uvicorn."""
    with DaphneServer(server="granian") as server:
        async with websockets.connect(f"{server.ws_url}?token=not.a.token", proxy=None, open_timeout=5) as conn:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                async with asyncio.timeout(3):
                    await conn.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
