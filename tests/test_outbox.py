"""The outbox without I/O: its queue's rules step by step, its writer against fake ASGI sends, and the consumer's
wiring through the real application."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from streaming.outbox import FrameQueue, Outbox, Put, frame_bytes
from streaming.protocol import CLOSE_REASONS, CloseCode
from tests.wsclient import AppClient


def close_message(code: CloseCode) -> dict[str, Any]:
    return {"type": "websocket.close", "code": int(code), "reason": CLOSE_REASONS[code]}


def text_message(text: str) -> dict[str, Any]:
    return {"type": "websocket.send", "text": text}


def drain(queue: FrameQueue) -> list[str]:
    frames = []
    while (text := queue.pop()) is not None:
        frames.append(text)
    return frames


# ---------------------------------------------------------------- the queue's rules


@pytest.mark.parametrize(
    ("text", "size"),
    [("", 0), ('{"type":"ping","id":1}', 22), ("café", 5), ("日本", 6), ("🙂", 4)],
)
def test_frame_bytes_are_utf8_bytes(text: str, size: int) -> None:
    """A frame counts as its size on the wire, not its length in characters."""
    assert frame_bytes(text) == size


def test_frames_come_out_in_order() -> None:
    """Frames leave in the order they were put."""
    queue = FrameQueue(limit=100)
    for text in ("a", "b", "c"):
        assert queue.put(text) is Put.QUEUED
    assert drain(queue) == ["a", "b", "c"]


def test_up_to_the_limit_is_queued() -> None:
    """Exactly the limit in unwritten bytes is allowed."""
    queue = FrameQueue(limit=10)
    assert queue.put("12345") is Put.QUEUED
    assert queue.put("678é") is Put.QUEUED  # 5 bytes: 10 in all
    assert queue.size == 10
    assert queue.take_close() is None


def test_past_the_limit_drops_everything_and_closes_too_slow() -> None:
    """One byte past the limit: what is queued is dropped and the close is 4413, with nothing before it."""
    queue = FrameQueue(limit=10)
    queue.put("1234567890")
    assert queue.put("x") is Put.OVERFLOW
    assert queue.size == 0
    assert queue.pop() is None
    assert queue.take_close() is CloseCode.TOO_SLOW


def test_written_frames_no_longer_count() -> None:
    """A client that keeps up is never closed, however much it is sent in all."""
    queue = FrameQueue(limit=10)
    for _ in range(1000):
        assert queue.put("12345678") is Put.QUEUED
        assert queue.pop() == "12345678"
    assert queue.size == 0
    assert queue.take_close() is None


def test_close_goes_out_after_the_frames_already_queued() -> None:
    """A close waits behind every frame queued before it."""
    queue = FrameQueue(limit=100)
    queue.put("a")
    queue.put("b")
    assert queue.close(CloseCode.SERVICE_RESTART)
    assert queue.take_close() is None
    assert queue.pop() == "a"
    assert queue.take_close() is None
    assert queue.pop() == "b"
    assert queue.take_close() is CloseCode.SERVICE_RESTART


def test_nothing_is_queued_after_a_close() -> None:
    """Frames put after a close are dropped, and the close is given out once."""
    queue = FrameQueue(limit=100)
    queue.close(CloseCode.IDLE_TIMEOUT)
    assert queue.put("late") is Put.DROPPED
    assert queue.take_close() is CloseCode.IDLE_TIMEOUT
    assert queue.take_close() is None
    assert queue.put("later") is Put.DROPPED
    assert queue.pop() is None


def test_first_close_wins() -> None:
    """A second close (or an overflow after a close) changes nothing."""
    queue = FrameQueue(limit=5)
    assert queue.close(CloseCode.SERVICE_RESTART)
    assert not queue.close(CloseCode.IDLE_TIMEOUT)
    assert queue.put("far too long for the limit") is Put.DROPPED
    assert queue.take_close() is CloseCode.SERVICE_RESTART


def test_finish_drops_and_refuses() -> None:
    """Once the socket is gone nothing is kept and no close is due."""
    queue = FrameQueue(limit=100)
    queue.put("a")
    queue.finish()
    assert queue.pop() is None
    assert queue.put("b") is Put.DROPPED
    assert not queue.close(CloseCode.SERVICE_RESTART)
    assert queue.take_close() is None


# ---------------------------------------------------------------- the writer, against fake ASGI sends


class FakeSend:
    """An ASGI send that records messages; frames may be held (a client that does not read) or refused."""

    def __init__(self, *, hold: bool = False, refuse: bool = False) -> None:
        self.messages: list[dict[str, Any]] = []
        self.released = asyncio.Event()
        if not hold:
            self.released.set()
        self.refuse = refuse
        self.cancelled = 0

    async def __call__(self, message: dict[str, Any]) -> None:
        if self.refuse:
            raise OSError("the client went away")
        if message["type"] == "websocket.send":
            try:
                await self.released.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        self.messages.append(message)


async def started(send: FakeSend, limit: int = 100) -> Outbox:
    return Outbox(send, limit)


async def test_writer_sends_frames_then_the_close_then_nothing() -> None:
    """Frames in order, then the close with its reason; a frame put after the close is never sent."""
    send = FakeSend()
    outbox = await started(send)
    for text in ("a", "b", "c"):
        outbox.put(text)
    outbox.close(CloseCode.SERVICE_RESTART)
    outbox.put("late")
    async with asyncio.timeout(2):
        await outbox.wait_closed()
    outbox.put("later")
    await outbox.aclose()
    assert send.messages == [*map(text_message, "abc"), close_message(CloseCode.SERVICE_RESTART)]


async def test_close_waits_for_a_slow_client_to_take_the_queued_frames() -> None:
    """A client that reads slowly gets every queued frame before the close; close() itself returns at once."""
    send = FakeSend(hold=True)
    outbox = await started(send)
    outbox.put("a")
    outbox.put("b")
    outbox.close(CloseCode.SERVICE_RESTART)
    assert send.messages == []
    send.released.set()
    async with asyncio.timeout(2):
        await outbox.wait_closed()
    assert send.messages == [text_message("a"), text_message("b"), close_message(CloseCode.SERVICE_RESTART)]
    await outbox.aclose()


async def test_stalled_client_past_the_limit_gets_4413_at_once() -> None:
    """While a send waits on a client that reads nothing, frames past the limit drop the queue and the 4413 close
    goes out without waiting for that send."""
    send = FakeSend(hold=True)
    outbox = await started(send, limit=10)
    outbox.put("first")  # the writer takes it and waits on the client
    async with asyncio.timeout(2):
        while outbox.queue.size:
            await asyncio.sleep(0)
    for _ in range(3):
        outbox.put("12345")  # the third passes the limit
    async with asyncio.timeout(2):
        await outbox.wait_closed()
    assert send.messages == [close_message(CloseCode.TOO_SLOW)]
    assert send.cancelled == 1
    assert outbox.queue.size == 0
    await outbox.aclose()


async def test_writer_stops_when_the_server_refuses_a_frame() -> None:
    """The socket went away under the writer: it ends, and later frames are dropped, not queued."""
    send = FakeSend(refuse=True)
    outbox = await started(send)
    outbox.put("a")
    async with asyncio.timeout(2):
        await outbox.wait_closed()
    outbox.put("b")
    assert outbox.queue.size == 0
    await outbox.aclose()


async def test_aclose_ends_a_waiting_writer() -> None:
    """The socket's disconnect ends the writer, even one held by a client that does not read."""
    send = FakeSend(hold=True)
    outbox = await started(send)
    outbox.put("a")
    outbox.put("b")
    async with asyncio.timeout(2):
        await outbox.aclose()
        await outbox.wait_closed()
    assert send.messages == []
    assert outbox.queue.size == 0


async def test_a_frame_put_while_nothing_is_ahead_is_sent_before_put_returns() -> None:
    """The common case costs no task wake-up: the server's send completes within put()."""
    send = FakeSend()
    outbox = await started(send)
    outbox.put("a")
    assert send.messages == [text_message("a")]
    await outbox.aclose()


async def test_frames_behind_a_send_that_waits_keep_their_order() -> None:
    """A send that suspends (the client's buffer is full) is finished by the writer; frames put meanwhile queue
    behind it and follow it in order, then the close."""
    send = FakeSend(hold=True)
    outbox = await started(send)
    outbox.put("a")  # suspends on the client
    outbox.put("b")
    outbox.put("c")
    outbox.close(CloseCode.SERVICE_RESTART)
    assert send.messages == []
    send.released.set()
    async with asyncio.timeout(2):
        await outbox.wait_closed()
    assert send.messages == [*map(text_message, "abc"), close_message(CloseCode.SERVICE_RESTART)]
    await outbox.aclose()


class FutureSend:
    """A server whose send returns an awaitable of its own, not a coroutine (as granian's may)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def __call__(self, message: dict[str, Any]) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(lambda: (self.messages.append(message), future.set_result(None)))
        return future


async def test_a_send_that_is_not_a_coroutine_goes_through_the_writer() -> None:
    send = FutureSend()
    outbox = Outbox(send, 100)
    for text in ("a", "b", "c"):
        outbox.put(text)
    outbox.close(CloseCode.SERVICE_RESTART)
    async with asyncio.timeout(2):
        await outbox.wait_closed()
    assert send.messages == [*map(text_message, "abc"), close_message(CloseCode.SERVICE_RESTART)]
    await outbox.aclose()


async def test_a_refused_send_in_put_ends_the_writer() -> None:
    """The server refuses the frame sent from put(): nothing more is queued or sent, and the outbox ends."""
    send = FakeSend(refuse=True)
    outbox = await started(send)
    outbox.put("a")
    outbox.put("b")
    async with asyncio.timeout(2):
        await outbox.wait_closed()
    assert outbox.queue.size == 0
    assert send.messages == []
    await outbox.aclose()


# ---------------------------------------------------------------- the consumer's outbox, through the real app


async def test_replay_larger_than_the_limit_closes_4413(ws: AppClient, token: str, settings: Any) -> None:
    """A resume whose replay is queued faster than the socket takes it, past WS_MAX_BUFFERED_BYTES: close 4413
    with its reason, and none of the dropped frames before it."""
    started_frame = await ws.generate(duration=120)  # ~300 words: ~40 KB of chunks
    await ws.recv_until({"stream.completed"})
    settings.STREAMING = {**settings.STREAMING, "MAX_BUFFERED_BYTES": 8 * 1024}
    client = AppClient(token=token)
    await client.open()
    # From here the client takes one frame at a time, as a socket's send buffer would: the replay's first frame
    # goes out at once, its second waits on the client, the rest queue up until they pass the limit.
    client.comm.output_queue._maxsize = 1  # type: ignore[attr-defined]
    await client.resume(started_frame["session_id"])
    first = await client.comm.receive_output(timeout=5)
    assert first["type"] == "websocket.send"
    assert orjson.loads(first["text"])["seq"] == 1
    assert await client.comm.receive_output(timeout=5) == close_message(CloseCode.TOO_SLOW)
    await client.close()


async def test_replay_within_the_limit_is_sent_whole(ws: AppClient, token: str, settings: Any) -> None:
    """The same replay under the limit: every chunk, then the terminal frame, and the socket stays open."""
    started_frame = await ws.generate(duration=120)
    chunks = [frame for frame in await ws.recv_until({"stream.completed"}) if frame["type"] == "stream.chunk"]
    settings.STREAMING = {**settings.STREAMING, "MAX_BUFFERED_BYTES": 64 * 1024}
    client = AppClient(token=token)
    await client.open()
    await client.resume(started_frame["session_id"])
    replayed = await client.recv_until({"stream.completed"})
    assert [frame["seq"] for frame in replayed[:-1]] == [frame["seq"] for frame in chunks]
    await client.send({"type": "ping", "id": 7})
    assert (await client.recv())["type"] == "pong"
    await client.close()


def tasks_but_mine() -> set[asyncio.Task[Any]]:
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


async def test_an_idle_socket_holds_no_writer() -> None:
    """Frames the server takes at once start no task: an idle socket's outbox holds none (issue 11)."""
    send = FakeSend()
    outbox = await started(send)
    before = tasks_but_mine()
    for text in ("a", "b"):
        outbox.put(text)
    assert tasks_but_mine() == before
    assert send.messages == [text_message("a"), text_message("b")]
    await outbox.aclose()


async def test_the_writer_ends_once_a_slow_client_took_everything() -> None:
    """A send that waited on the client starts a writer, which ends once the queue is empty; the next frame is sent
    at once again."""
    send = FakeSend(hold=True)
    outbox = await started(send)
    before = tasks_but_mine()
    outbox.put("a")
    outbox.put("b")
    (writer,) = tasks_but_mine() - before
    send.released.set()
    async with asyncio.timeout(2):
        await writer
    outbox.put("c")
    assert tasks_but_mine() == before
    assert send.messages == [text_message("a"), text_message("b"), text_message("c")]
    await outbox.aclose()
