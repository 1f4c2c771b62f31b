"""A connection's view of one session: each seq exactly once, in order, then the terminal frame once.

Nothing here awaits: a watch is fed in the pacer's pass (or the runner's step) and only appends to its socket's
outbox, so a replay and the live words that follow it can never interleave, and no word costs a task step.
A watch whose client asked for it ("batch": true) holds live words for one short window (pacer.HOLD_S) and
sends them as one stream.chunk; a terminal frame first releases what is held, so it still comes last.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from streaming import protocol
from streaming.chunks import MAX_WORDS_PER_FRAME, Words, multi_word_frames
from streaming.pacer import Pacer, get_pacer
from streaming.protocol import ErrorCode
from streaming.store import SessionState, StreamStore

Send = Callable[[str], None]

# Beyond the process liveness window, how long a followed session may be missing from the store.
LOST_GRACE_S = 5


class Watch:
    """Fed by a live stream on this process (or by polls of the store); dedupes by seq."""

    def __init__(
        self,
        send: Send,
        session_id: str,
        last_seq: int,
        on_done: Callable[[Watch], None],
        *,
        chunks: bool = True,
        started_sent: bool = True,
        batch: bool = False,
    ) -> None:
        self.session_id = session_id
        self.last_sent = last_seq
        self.done = False
        self.batch = batch
        self._send_text = send
        self._on_done = on_done
        self._chunks = chunks
        self._started_sent = started_sent
        self._held: list[str] = []  # words of the next multi-word frame, the last of them seq last_sent
        self._held_estimate = 1
        self._pacer: Pacer | None = None

    def deliver_started(self, frame: str) -> None:
        """stream.started, to the connection that asked for the generation (once)."""
        if self.done or self._started_sent:
            return
        self._started_sent = True
        self._send_text(frame)

    def deliver_words(self, words: Words) -> None:
        """Live words: those not sent yet go out now, or (batch) join the held frame."""
        if self.done:
            return
        count = len(words.words)
        if (
            words.first_seq == self.last_sent + 1
            and self._chunks
            and not self._held
            and 0 < count <= MAX_WORDS_PER_FRAME
        ):
            # The usual case, once per hand-over per watch: the next words, nothing held. What _take would send.
            if not self.batch:
                self.last_sent += count
                for frame in words.one_word_frames():
                    self._send_text(frame)
                return
            if words.held:  # the pacer held them for the window already: one frame now
                self.last_sent += count
                text = "".join(words.words)
                self._send_text(
                    protocol.stream_chunks(self.session_id, self.last_sent, count, text, words.estimated_words)
                )
                return
        self._take(words, hold=self.batch and not words.held)

    def deliver_terminal(self, frame: dict[str, Any]) -> None:
        """The one terminal frame, after every word sent or held before it."""
        if self.done:
            return
        self.release()
        self.done = True
        self._on_done(self)
        self._send_text(protocol.encode(frame))

    def replay(self, words: Words | None, terminal: dict[str, Any] | None) -> None:
        """Send stored words at once (multi-word frames for a batch watch, never held), then the terminal."""
        if words is not None and not self.done:
            self._take(words, hold=False)
        if terminal is not None:
            self.deliver_terminal(terminal)

    def release(self) -> None:
        """Send the held words as one frame (the hold window ended, or a terminal frame is next)."""
        if not self._held:
            return
        held, self._held = self._held, []
        if self.done:
            return
        self._send_text(
            protocol.stream_chunks(self.session_id, self.last_sent, len(held), "".join(held), self._held_estimate)
        )

    def detach(self) -> None:
        """The connection went away (or resumed this session again): deliver nothing more."""
        self.done = True
        self._held = []

    def _take(self, words: Words, *, hold: bool) -> None:
        skip = self.last_sent - words.first_seq + 1  # words this connection already has
        if skip >= len(words.words):
            return
        skip = max(skip, 0)
        if not hold:
            self.release()  # what is held goes first, under its own last seq
        self.last_sent = words.last_seq
        if not self._chunks:
            return
        send = self._send_text
        if not self.batch:
            frames = words.one_word_frames()
            for frame in frames[skip:] if skip else frames:
                send(frame)
            return
        if not hold:
            for frame in multi_word_frames(self.session_id, words.words[skip:], words.last_seq, words.estimated_words):
                send(frame)
            return
        if not self._held:
            if self._pacer is None or self._pacer.closed:
                self._pacer = get_pacer()
            self._pacer.hold(self.release)
        self._held += words.words[skip:] if skip else words.words
        self._held_estimate = words.estimated_words
        if len(self._held) >= MAX_WORDS_PER_FRAME:
            self.release()


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
                self._session_missing()
                return None
            self._missing_since = None
            words = Words(state.session_id, state.first_seq, state.words, state.estimated_words)
            self.replay(words if state.words else None, state.terminal)
            return state

    def _session_missing(self) -> None:
        """The store lost a session we follow (a Redis restart): its writer restores it within a tick if alive.

        If it stays gone past the liveness window, nobody will: end it rather than wait forever.
        """
        now = time.monotonic()
        if self._missing_since is None:
            self._missing_since = now
        elif now - self._missing_since > settings.STREAMING["PROCESS_TTL_S"] + LOST_GRACE_S:
            message = "The stream's state was lost with the server that held it; the words so far are kept."
            self.deliver_terminal(
                protocol.stream_failed(self.session_id, self.last_sent, ErrorCode.WORKER_LOST, message)
            )
