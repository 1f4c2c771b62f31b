"""A connection's view of one session: each seq exactly once, in order, then the terminal frame once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from streaming import protocol
from streaming.protocol import ErrorCode
from streaming.store import SessionState, StreamStore

Send = Callable[[str], Awaitable[None]]

# Beyond the process liveness window, how long a followed session may be missing from the store.
LOST_GRACE_S = 5


class Watch:
    """Fed by a live stream on this process; frames that arrive while replaying wait, then dedupe by seq."""

    def __init__(
        self,
        send: Send,
        session_id: str,
        last_seq: int,
        on_done: Callable[[Watch], None],
        *,
        chunks: bool = True,
        started_sent: bool = True,
    ) -> None:
        self.session_id = session_id
        self.last_sent = last_seq
        self.done = False
        self._send_text = send
        self._on_done = on_done
        self._chunks = chunks
        self._started_sent = started_sent
        self._replaying = False
        self._pending: list[tuple[int, str]] = []
        self._pending_terminal: dict[str, Any] | None = None

    async def deliver(self, seq: int, frame: str) -> None:
        if self.done:
            return
        if self._replaying:
            self._pending.append((seq, frame))
            return
        await self._send(seq, frame)

    async def deliver_terminal(self, frame: dict[str, Any]) -> None:
        if self.done:
            return
        if self._replaying:
            self._pending_terminal = frame
            return
        self.done = True
        self._on_done(self)
        await self._send_text(protocol.encode(frame))

    async def replay(self, items: list[tuple[int, str]], terminal: dict[str, Any] | None) -> None:
        """Send stored frames, then whatever arrived live meanwhile (already-sent seqs dropped)."""
        self._replaying = True
        try:
            for seq, frame in items:
                await self._send(seq, frame)
            while self._pending:
                seq, frame = self._pending.pop(0)
                await self._send(seq, frame)
        finally:
            self._replaying = False
        terminal = terminal or self._pending_terminal
        if terminal is not None:
            await self.deliver_terminal(terminal)

    async def _send(self, seq: int, frame: str) -> None:
        if seq == 0:
            if self._started_sent:
                return
            self._started_sent = True
        elif seq <= self.last_sent:
            return
        else:
            self.last_sent = seq
            if not self._chunks:
                return
        await self._send_text(frame)

    def detach(self) -> None:
        """The connection went away: deliver nothing more."""
        self.done = True


def chunk_frames(session_id: str, words: list[str], first_seq: int, estimated_words: int) -> list[tuple[int, str]]:
    """(seq, stream.chunk frame) for stored words starting at first_seq: what a replay sends."""
    return [
        (seq, protocol.stream_chunk(session_id, seq, text, estimated_words))
        for seq, text in enumerate(words, start=first_seq)
    ]


class RemoteWatch(Watch):
    """Watches a session owned by another process (or already ended): reads the store when woken."""

    def __init__(self, store: StreamStore, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._store = store
        self._lock = asyncio.Lock()
        self._missing_since: float | None = None

    async def poll(self) -> SessionState | None:
        """Send every stored word after the last one sent, and the terminal frame once it is there."""
        async with self._lock:
            if self.done:
                return None
            state = await self._store.read(self.session_id, self.last_sent)
            if state is None:
                await self._session_missing()
                return None
            self._missing_since = None
            await self.replay(
                chunk_frames(state.session_id, state.words, state.first_seq, state.estimated_words), state.terminal
            )
            return state

    async def _session_missing(self) -> None:
        """The store lost a session we follow (a Redis restart): its writer restores it within a tick if alive.

        If it stays gone past the liveness window, nobody will: end it rather than wait forever.
        """
        now = time.monotonic()
        if self._missing_since is None:
            self._missing_since = now
        elif now - self._missing_since > settings.STREAMING["PROCESS_TTL_S"] + LOST_GRACE_S:
            message = "The stream's state was lost with the server that held it; the words so far are kept."
            await self.deliver_terminal(
                protocol.stream_failed(self.session_id, self.last_sent, ErrorCode.WORKER_LOST, message)
            )
