"""One socket's outbound frames: queued without waiting on the client, written by one task, bounded in bytes.

Under uvicorn (websockets) the ASGI `send` waits while the client does not read; under Daphne it never waits and
Twisted buffers instead (daphne_compat bounds that). Either way a generation's other listeners, the registry's
tick and the consumer's own receive loop only ever append here, so one slow client holds up nobody else.
The limit counts bytes queued here and not yet handed to the server; under uvicorn the server's own write buffer
adds at most websockets' write_limit (64 KiB) and one frame.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any

from creatornexus import logcontext
from streaming.protocol import CLOSE_REASONS, CloseCode

logger = logging.getLogger(__name__)

AsgiSend = Callable[[dict[str, Any]], Awaitable[None]]


def frame_bytes(text: str) -> int:
    """A frame's size on the wire; ASCII (nearly every frame) is measured without encoding it."""
    return len(text) if text.isascii() else len(text.encode())


class Put(Enum):
    """What became of a frame given to FrameQueue.put."""

    QUEUED = "queued"
    DROPPED = "dropped"  # closing or finished: nothing more goes out
    OVERFLOW = "overflow"  # this frame passed the limit: the queue was dropped and closes with TOO_SLOW


class FrameQueue:
    """The outbox's rules, free of I/O: order kept, a byte limit, a close that goes out after the frames before it,
    and nothing after the close."""

    __slots__ = ("close_code", "close_reason", "finished", "frames", "limit", "size")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.frames: deque[str] = deque()
        self.size = 0  # bytes queued, not yet handed to the server
        self.close_code: CloseCode | None = None  # set once; frames put after it are dropped
        self.close_reason: str | None = None  # said instead of the code's CLOSE_REASONS text when set
        self.finished = False  # the close was taken, or the socket failed: the queue stays empty

    def put(self, text: str) -> Put:
        if self.close_code is not None or self.finished:
            return Put.DROPPED
        self.size += frame_bytes(text)
        if self.size > self.limit:
            self.frames.clear()
            self.size = 0
            self.close_code = CloseCode.TOO_SLOW
            return Put.OVERFLOW
        self.frames.append(text)
        return Put.QUEUED

    def close(self, code: CloseCode, reason: str | None = None) -> bool:
        """Close after the frames already queued; the first close wins (False for a later one)."""
        if self.close_code is not None or self.finished:
            return False
        self.close_code = code
        self.close_reason = reason
        return True

    def pop(self) -> str | None:
        """The next frame to write, no longer counted as queued; None when there is none."""
        if not self.frames:
            return None
        text = self.frames.popleft()
        self.size -= frame_bytes(text)
        return text

    def take_close(self) -> CloseCode | None:
        """The close to write now: one was asked for and no frame is left before it. Given out once."""
        if self.close_code is None or self.frames or self.finished:
            return None
        self.finished = True
        return self.close_code

    def finish(self) -> None:
        """The socket is gone: drop what is queued and refuse everything from now on."""
        self.frames.clear()
        self.size = 0
        self.finished = True


class Outbox:
    """put() and close() return at once; one writer task sends the frames in order, then the close, then ends.

    `send` is the connection's ASGI send; the owner calls start() before the first frame and aclose() when the
    socket is gone.
    """

    def __init__(self, send: AsgiSend, limit: int) -> None:
        self.queue = FrameQueue(limit)
        self._send = send
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._retired: asyncio.Task[None] | None = None
        self._writing = False
        self._ended = asyncio.Event()
        # The socket's log context (its connection and user): its writers and its overflow line name this socket,
        # whichever task (another socket's generation) put the frame that overflowed.
        self._log_context = contextvars.copy_context()

    def start(self) -> None:
        self._writer = asyncio.create_task(self._run(), name="outbox", context=self._log_context.copy())

    def put(self, text: str) -> None:
        """The hot path (once per word per socket): no allocation beyond the queue slot, no await."""
        result = self.queue.put(text)
        if result is Put.QUEUED:
            self._wake.set()
        elif result is Put.OVERFLOW:
            self._overflowed()

    def close(self, code: CloseCode, reason: str | None = None) -> None:
        """Send the close after the frames already queued (with `reason`, else the code's); later frames are dropped."""
        if self.queue.close(code, reason):
            self._wake.set()

    async def wait_closed(self) -> None:
        """Until nothing more can go out: the close was written, the server refused a frame, or aclose() ran."""
        await self._ended.wait()

    async def aclose(self) -> None:
        """The socket is gone: drop what is queued and end the writer."""
        self.queue.finish()
        tasks = [task for task in (self._writer, self._retired) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._ended.set()

    def _overflowed(self) -> None:
        logger.info(
            "closing a socket that stopped reading (more than %d bytes queued)",
            self.queue.limit,
            extra=logcontext.bound_in(self._log_context),
        )
        if self._writing and self._writer is not None:
            # The writer waits on a client that does not read: stop it, and a fresh writer sends the close now.
            self._writer.cancel()
            self._retired = self._writer
            self._writing = False
            self.start()
        self._wake.set()

    async def _run(self) -> None:
        """Each pass sends everything queued, then the close if one is due."""
        queue = self.queue
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                self._writing = True
                while (text := queue.pop()) is not None:
                    await self._send({"type": "websocket.send", "text": text})
                self._writing = False
                code = queue.take_close()
                if code is not None:
                    reason = queue.close_reason or CLOSE_REASONS[code]
                    await self._send({"type": "websocket.close", "code": int(code), "reason": reason})
                    break
        except Exception as exc:
            # The server refused the frame: the socket is closing or gone; its disconnect follows.
            logger.debug("socket write failed (%s); dropping its queued frames", type(exc).__name__)
            queue.finish()
        self._ended.set()
