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
from collections.abc import Awaitable, Callable, Coroutine, Generator
from enum import Enum
from types import CoroutineType
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
        # Made by the first frame queued: most frames are sent at once, and an empty deque costs 0.74 KB a socket.
        self.frames: deque[str] | None = None
        self.size = 0  # bytes queued, not yet handed to the server
        self.close_code: CloseCode | None = None  # set once; frames put after it are dropped
        self.close_reason: str | None = None  # said instead of the code's CLOSE_REASONS text when set
        self.finished = False  # the close was taken, or the socket failed: the queue stays empty

    def put(self, text: str) -> Put:
        if self.close_code is not None or self.finished:
            return Put.DROPPED
        self.size += frame_bytes(text)
        if self.size > self.limit:
            self.frames = None
            self.size = 0
            self.close_code = CloseCode.TOO_SLOW
            return Put.OVERFLOW
        if self.frames is None:
            self.frames = deque()
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
        self.frames = None
        self.size = 0
        self.finished = True


class _Rest:
    """A send that suspended during its eager first step (the server's buffer was full), finished by the writer.

    The coroutine is resumed where it stopped once what it waited on is done; a cancel closes it.
    """

    __slots__ = ("coro", "waiting")

    def __init__(self, coro: Coroutine[Any, Any, None], waiting: Any) -> None:
        self.coro = coro
        self.waiting = waiting

    def close(self) -> None:
        """Cancel it as a task's cancel would: what it waited on is cancelled, CancelledError raised inside it."""
        if isinstance(self.waiting, asyncio.Future):
            self.waiting.cancel()
        try:
            self.coro.throw(asyncio.CancelledError())
        except BaseException:  # the CancelledError (or whatever it ended with) is the point
            return
        self.coro.close()  # it caught the cancel and went on waiting: stop it there

    def __await__(self) -> Generator[Any, None, None]:
        try:
            yield self.waiting
        except BaseException:
            self.close()
            raise
        yield from self.coro.__await__()


class Outbox:
    """put() and close() return at once; frames go out in order, then the close, then nothing.

    A frame put while nothing is queued or being written is sent at once, in the caller's step: the ASGI send
    of uvicorn (websockets) and Daphne completes without suspending while the client reads, so most frames
    cost no task wake-up and no future. A send that does suspend, every frame put behind it and the close are
    finished by a writer task that lives only while it has something to write: an idle socket holds no task,
    no event and no future here (issue 11, memory per idle socket). `send` is the connection's ASGI send; the
    owner calls aclose() when the socket is gone.
    """

    __slots__ = ("_done", "_eager", "_ended", "_log_context", "_rest", "_retired", "_send", "_writer", "queue")

    def __init__(self, send: AsgiSend, limit: int) -> None:
        self.queue = FrameQueue(limit)
        self._send = send
        # Alive while it owns the socket: a suspended send, or frames or a close queued behind one.
        self._writer: asyncio.Task[None] | None = None
        self._retired: asyncio.Task[None] | None = None
        self._rest: Awaitable[None] | None = None
        self._eager = True  # False once the server's send turned out not to be a coroutine (granian)
        self._done = False  # nothing more can go out: the close was written, a send failed, or aclose() ran
        self._ended: asyncio.Event | None = None  # made by the first wait_closed() that has to wait
        # The socket's log context (its connection and user): its writers and its overflow line name this socket,
        # whichever task (another socket's generation) put the frame that overflowed.
        self._log_context = contextvars.copy_context()

    def put(self, text: str) -> None:
        """The hot path (once per frame per socket): sent now when nothing is ahead of it, else queued; no await."""
        queue = self.queue
        nothing_ahead = not queue.frames and queue.close_code is None and not queue.finished
        if self._eager and self._writer is None and nothing_ahead:
            self._send_now(text)
            return
        result = queue.put(text)
        if result is Put.QUEUED:
            self._write()
        elif result is Put.OVERFLOW:
            self._overflowed()

    def _write(self) -> None:
        """Start the writer unless one is at work already (it takes whatever was queued before it ends)."""
        if self._writer is None and not self._done:
            self._writer = asyncio.create_task(self._run(), name="outbox", context=self._log_context.copy())

    def _send_now(self, text: str) -> None:
        """Run the ASGI send's first step here; if it suspends, the writer task finishes it."""
        sending = self._send({"type": "websocket.send", "text": text})
        # type() first: isinstance against the Coroutine ABC costs ~0.5 us a frame, and servers' sends are native.
        if type(sending) is not CoroutineType and not isinstance(sending, Coroutine):
            self._eager = False  # an awaitable of the server's own: awaited by the writer, this and every frame
            self._rest = sending
        else:
            try:
                waiting = sending.send(None)
            except StopIteration:
                return
            except Exception as exc:
                self._failed(exc)
                return
            self._rest = _Rest(sending, waiting)
        self._write()

    def _failed(self, exc: BaseException) -> None:
        # The server refused the frame: the socket is closing or gone; its disconnect follows.
        logger.debug(
            "socket write failed (%s); dropping its queued frames",
            type(exc).__name__,
            extra=logcontext.bound_in(self._log_context),
        )
        self.queue.finish()
        self._finish()

    def _finish(self) -> None:
        self._done = True
        if self._ended is not None:
            self._ended.set()

    def close(self, code: CloseCode, reason: str | None = None) -> None:
        """Send the close after the frames already queued (with `reason`, else the code's); later frames are dropped."""
        if self.queue.close(code, reason):
            self._write()

    async def wait_closed(self) -> None:
        """Until nothing more can go out: the close was written, the server refused a frame, or aclose() ran."""
        if self._done:
            return
        if self._ended is None:
            self._ended = asyncio.Event()
        await self._ended.wait()

    async def aclose(self) -> None:
        """The socket is gone: drop what is queued and end the writer."""
        self.queue.finish()
        self._drop_rest()
        tasks = [task for task in (self._writer, self._retired) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # A cancelled writer's CancelledError holds its frame, which holds this outbox, which held the task:
        # a cycle only a full collection would free, with the server's protocol objects in it.
        self._writer = self._retired = None
        self._finish()

    def _drop_rest(self) -> None:
        rest, self._rest = self._rest, None
        if isinstance(rest, (_Rest, Coroutine)):
            rest.close()
        elif isinstance(rest, asyncio.Future):
            rest.cancel()  # a server's own awaitable (granian's send)

    def _overflowed(self) -> None:
        logger.info(
            "closing a socket that stopped reading (more than %d bytes queued)",
            self.queue.limit,
            extra=logcontext.bound_in(self._log_context),
        )
        if self._writer is not None:
            # The writer waits on a client that does not read: stop it, and a fresh writer sends the close now.
            self._writer.cancel()
            self._retired, self._writer = self._writer, None
            self._drop_rest()  # it waits on the same client
        self._write()

    async def _run(self) -> None:
        """Send what a suspended send left and everything queued, then the close if one is due; then end."""
        queue = self.queue
        try:
            if self._rest is not None:
                rest, self._rest = self._rest, None
                await rest
            while (text := queue.pop()) is not None:
                await self._send({"type": "websocket.send", "text": text})
            code = queue.take_close()
            if code is not None:
                reason = queue.close_reason or CLOSE_REASONS[code]
                await self._send({"type": "websocket.close", "code": int(code), "reason": reason})
                self._finish()
        except Exception as exc:
            self._failed(exc)
        finally:
            if self._writer is asyncio.current_task():
                self._writer = None  # the next frame is sent at once again, or starts a new writer
