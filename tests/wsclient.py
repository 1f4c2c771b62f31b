"""A test client for the real ASGI application over channels' WebsocketCommunicator."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from channels.testing import WebsocketCommunicator

from creatornexus.asgi import application


class AppClient:
    """Speaks protocol v1 to the in-process application; every wait has a timeout."""

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
        self.established: dict[str, Any] = {}
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

    async def recv(self, timeout: float = 5) -> dict[str, Any]:
        message = await self.comm.receive_output(timeout)
        assert message["type"] == "websocket.send", message
        frame: dict[str, Any] = orjson.loads(message["text"])
        return frame

    async def recv_until(self, kinds: set[str], timeout: float = 10) -> list[dict[str, Any]]:
        """Every frame up to and including the first whose type is in `kinds`."""
        frames: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                frames.append(frame)
                if frame["type"] in kinds:
                    return frames

    async def nothing(self, timeout: float = 0.1) -> bool:
        return await self.comm.receive_nothing(timeout)

    async def generate(self, **fields: Any) -> dict[str, Any]:
        frame = {
            "type": "generate",
            "request_id": "r1",
            "topic": "pour-over coffee",
            "platform": "tiktok",
            "duration": 30,
        }
        await self.send({**frame, **fields})
        started = await self.recv()
        assert started["type"] == "stream.started", started
        return started

    async def close(self) -> None:
        await self.comm.disconnect()
