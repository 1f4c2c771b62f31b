"""WS_ALLOW_QUERY_TOKEN: ?token= is accepted by default (the service this replaces used it) and can be turned off."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import websockets
from channels.testing import WebsocketCommunicator

from creatornexus.asgi import application
from streaming.protocol import CLOSE_REASONS, CloseCode
from tests.servers import DaphneServer
from tests.wsclient import AppClient, open_socket


async def closed_4401(path: str) -> None:
    """Accepted, then closed with 4401 before any frame."""
    comm = WebsocketCommunicator(application, path)
    connected, _ = await comm.connect(timeout=5)
    assert connected
    assert await comm.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": 4401,
        "reason": CLOSE_REASONS[CloseCode.UNAUTHORIZED],
    }
    await comm.disconnect()


async def test_query_token_accepted_by_default(user: Any, token: str) -> None:
    """Without the setting, ?token= opens the socket for its user."""
    client = AppClient(token=token)
    established = await client.open()
    await client.close()
    assert established["user"]["username"] == "alice"


async def test_query_token_ignored_when_off(
    user: Any, token: str, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """WS_ALLOW_QUERY_TOKEN=0: a valid ?token= alone gets 4401, and the log says why (without the token)."""
    settings.WS_ALLOW_QUERY_TOKEN = False
    caplog.set_level(logging.INFO, logger="accounts.middleware")
    await closed_4401(f"/ws/stream/?token={token}")
    assert "?token= ignored (WS_ALLOW_QUERY_TOKEN is off)" in caplog.text
    assert token not in caplog.text


async def test_other_carriers_work_when_query_is_off(user: Any, token: str, settings: Any) -> None:
    """WS_ALLOW_QUERY_TOKEN=0 leaves the subprotocol and the Authorization header working."""
    settings.WS_ALLOW_QUERY_TOKEN = False
    for client in (
        AppClient(subprotocols=["creatornexus.v1", f"bearer.{token}"]),
        AppClient(headers=[(b"authorization", f"Bearer {token}".encode())]),
    ):
        established = await client.open()
        await client.close()
        assert established["user"]["username"] == "alice"


@pytest.mark.e2e
async def test_query_token_off_in_a_real_process(user: Any, token: str) -> None:
    """A Daphne process started with WS_ALLOW_QUERY_TOKEN=0 closes a ?token= socket with 4401; the header works."""
    with DaphneServer({"WS_ALLOW_QUERY_TOKEN": "0"}) as server:
        async with websockets.connect(f"{server.ws_url}?token={token}", proxy=None, open_timeout=5) as conn:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await conn.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        async with open_socket(server.ws_url, additional_headers={"Authorization": f"Bearer {token}"}) as client:
            assert client.established["user"]["username"] == "alice"
