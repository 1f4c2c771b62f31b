"""Protocol v1 test clients: in-process (channels' WebsocketCommunicator) and over a real socket (websockets)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from channels.testing import WebsocketCommunicator
from websockets.asyncio.client import ClientConnection, connect

from creatornexus.asgi import application
from tests.asyncapi import check_server_frame

GENERATE_DEFAULTS = {"type": "generate", "request_id": "r1", "topic": "pour-over coffee", "platform": "tiktok"}


class FrameClient:
    """What every test client can do, given send() and recv(); every wait has a timeout."""

    established: dict[str, Any]

    async def send(self, frame: dict[str, Any]) -> None:
        raise NotImplementedError

    async def receive(self, timeout: float = 5) -> dict[str, Any]:
        """The next frame as it arrived."""
        raise NotImplementedError

    async def recv(self, timeout: float = 5) -> dict[str, Any]:
        """The next frame, checked against its message schema in docs/asyncapi.yaml (tests/asyncapi.py)."""
        frame = await self.receive(timeout)
        check_server_frame(frame)
        return frame

    async def recv_until(self, kinds: set[str], timeout: float = 10) -> list[dict[str, Any]]:
        """Every frame up to and including the first whose type is in `kinds` (server pings skipped)."""
        frames: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                if frame["type"] == "ping" and "ping" not in kinds:
                    continue
                frames.append(frame)
                if frame["type"] in kinds:
                    return frames

    async def chunks_up_to(self, seq: int) -> list[dict[str, Any]]:
        """Frames until the chunk with this seq has arrived."""
        frames = await self.recv_until({"stream.chunk"})
        while frames[-1]["seq"] < seq:
            frames += await self.recv_until({"stream.chunk"})
        return frames

    async def generate(self, **fields: Any) -> dict[str, Any]:
        await self.send({**GENERATE_DEFAULTS, "duration": 30, **fields})
        # A server ping may come first (tests that set a 1 s heartbeat); anything else is the answer.
        started = await self.recv()
        while started["type"] == "ping":
            started = await self.recv()
        assert started["type"] == "stream.started", started
        return started

    async def resume(self, session_id: str, last_seq: int = 0) -> None:
        await self.send({"type": "resume", "session_id": session_id, "last_seq": last_seq})


class AppClient(FrameClient):
    """Speaks to the in-process application: origin check, JWT middleware and router included."""

    def __init__(
        self,
        *,
        token: str | None = None,
        path: str = "/ws/stream/",
        headers: list[tuple[bytes, bytes]] | None = None,
        subprotocols: list[str] | None = None,
    ) -> None:
        if token is not None:
            path = f"{path}?token={token}"
        self.comm = WebsocketCommunicator(application, path, headers=headers or [], subprotocols=subprotocols)
        self.established = {}
        self.accepted_subprotocol: str | None = None

    async def open(self) -> dict[str, Any]:
        connected, subprotocol = await self.comm.connect(timeout=5)
        assert connected, f"handshake refused ({subprotocol})"
        self.accepted_subprotocol = subprotocol
        self.established = await self.recv()
        assert self.established["type"] == "connection.established", self.established
        return self.established

    async def send(self, frame: dict[str, Any]) -> None:
        await self.comm.send_to(text_data=orjson.dumps(frame).decode())

    async def send_raw(self, text: str | None = None, data: bytes | None = None) -> None:
        await self.comm.send_to(text_data=text, bytes_data=data)

    async def receive(self, timeout: float = 5) -> dict[str, Any]:
        message = await self.comm.receive_output(timeout)
        assert message["type"] == "websocket.send", message
        frame: dict[str, Any] = orjson.loads(message["text"])
        return frame

    async def nothing(self, timeout: float = 0.1) -> bool:
        return await self.comm.receive_nothing(timeout)

    async def close(self) -> None:
        await self.comm.disconnect()


class SocketClient(FrameClient):
    """Speaks to a real server process over a real socket (the `websockets` client)."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.established = {}

    async def send(self, frame: dict[str, Any]) -> None:
        await self.conn.send(orjson.dumps(frame).decode())

    async def receive(self, timeout: float = 5) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            frame: dict[str, Any] = orjson.loads(await self.conn.recv())
        return frame

    async def silent(self, timeout: float = 0.3) -> bool:
        """Nothing arrives within `timeout`."""
        try:
            async with asyncio.timeout(timeout):
                await self.conn.recv()
        except TimeoutError:
            return True
        return False


@asynccontextmanager
async def open_socket(url: str, **options: Any) -> AsyncIterator[SocketClient]:
    """A real socket that has received connection.established."""
    async with connect(url, proxy=None, open_timeout=5, **options) as conn:
        client = SocketClient(conn)
        client.established = await client.recv()
        assert client.established["type"] == "connection.established", client.established
        yield client
