"""End to end with the OpenAI provider: a real Daphne process streams from the fake server over a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from channels.db import database_sync_to_async
from websockets.asyncio.client import ClientConnection, connect

from streaming import protocol
from streaming.models import StreamSession
from tests.fake_openai import FakeOpenAI, Scenario
from tests.servers import DaphneServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

TERMINAL = protocol.TERMINAL_TYPES
API_KEY = "test-key"
SCRIPT = "Stop scrolling: café crème in 30 seconds. 咖啡 tastes best fresh 👍🏽 — try it tonight!"


@pytest.fixture
def daphne(django_db_setup: Any, fake_openai: FakeOpenAI) -> Iterator[DaphneServer]:
    """Daphne with OPENAI_API_KEY set and OPENAI_BASE_URL pointing at the fake server."""
    env = {
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": fake_openai.base_url,
        "OPENAI_MODEL": "fake-model",
        "OPENAI_MAX_RETRIES": "0",
        "AI_FALLBACK": "",
    }
    with DaphneServer(env=env) as server:
        yield server


async def recv(conn: ClientConnection, timeout: float = 5) -> dict[str, Any]:
    frame: dict[str, Any] = orjson.loads(await asyncio.wait_for(conn.recv(), timeout))
    return frame


async def test_daphne_streams_a_whole_script_from_the_fake(
    daphne: DaphneServer, fake_openai: FakeOpenAI, token: str
) -> None:
    """Over a real socket: started from openai, contiguous whole-word chunks, completed, the script saved."""
    fake_openai.serve(Scenario(deltas=[SCRIPT[i : i + 4] for i in range(0, len(SCRIPT), 4)], byte_split=5))
    async with connect(f"{daphne.ws_url}?token={token}", proxy=None, open_timeout=5) as conn:
        assert (await recv(conn))["type"] == "connection.established"
        generate = {"type": "generate", "request_id": "e1", "topic": "coffee", "platform": "tiktok", "duration": 30}
        await conn.send(orjson.dumps(generate).decode())
        started = await recv(conn)
        assert (started["type"], started["provider"]) == ("stream.started", "openai"), started
        frames = [await recv(conn)]
        async with asyncio.timeout(15):
            while frames[-1]["type"] not in TERMINAL:
                frames.append(await recv(conn))
    chunks, end = frames[:-1], frames[-1]
    assert end["type"] == "stream.completed", end
    assert [chunk["seq"] for chunk in chunks] == list(range(1, end["seq"] + 1))
    assert "".join(chunk["text"] for chunk in chunks) == SCRIPT
    row = await database_sync_to_async(StreamSession.objects.get)(session_id=started["session_id"])
    assert (row.status, row.provider, row.script) == ("completed", "openai", SCRIPT)
    assert fake_openai.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
