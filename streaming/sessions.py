"""What a connection can do with stream sessions: generate, resume (watch), cancel."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import NoReturn

from channels.db import database_sync_to_async
from django.conf import settings

from creatornexus import logcontext
from streaming import metrics, quotas, selectors
from streaming.protocol import Cancel, ClientError, ErrorCode, Resume, ScriptRequest
from streaming.providers import get_fallback_provider, get_provider
from streaming.registry import ProcessRegistry
from streaming.runner import LiveStream
from streaming.store.quota import Lease, LeaseKind
from streaming.watch import RemoteWatch, Send, Watch, chunk_frames

logger = logging.getLogger(__name__)

# Where one attach's words came from (metrics.LIVE or metrics.STORE), and how many it replayed.
Replay = tuple[str, int]


@dataclass(eq=False)
class SessionsOfConnection:
    """The watches one connection holds; the consumer owns one of these."""

    registry: ProcessRegistry
    user_id: int
    connection_id: str
    send: Send
    watches: dict[str, Watch] = field(default_factory=dict)

    async def generate(self, request: ScriptRequest) -> None:
        """Validate limits, then start the generation as a registry-owned task and return at once."""
        if self.registry.draining:
            raise ClientError(ErrorCode.SHUTTING_DOWN, "The server is restarting; ask again in a moment.")
        mine = sum(1 for watch in self.watches.values() if not watch.done)
        if mine >= settings.STREAMING["MAX_STREAMS_PER_CONNECTION"]:
            raise ClientError(ErrorCode.TOO_MANY_STREAMS, "Too many streams running on this connection.")
        await quotas.check_word_budget(self.registry.store, self.user_id)
        session_id = str(uuid.uuid4())
        # Counted over every process; the registry releases it when the generation ends.
        if not await self.registry.leases.claim(Lease(LeaseKind.STREAMS, self.user_id, session_id)):
            raise ClientError(ErrorCode.TOO_MANY_STREAMS, "Too many of your streams are running at once.")
        live = LiveStream(session_id, self.user_id, self.connection_id, request, self.registry.process_id)
        watch = Watch(self.send, session_id, 0, self._watch_done, started_sent=False)
        self.watches[session_id] = watch
        live.listeners.add(watch)
        self.registry.start_stream(live, get_provider(), get_fallback_provider())

    async def resume(self, frame: Resume) -> None:
        """Replay seq > last_seq from this process or the store, then follow live until the end."""
        replay = await self._attach(frame.session_id, frame.last_seq, chunks=True)
        if replay is None:
            return
        source, words = replay
        metrics.RESUMES.labels(source).inc()
        metrics.RESUME_REPLAYED_WORDS.labels(source).inc(words)
        logger.info(
            "resume from seq %d: %d words replayed from %s",
            frame.last_seq,
            words,
            source,
            extra=logcontext.about(connection=self.connection_id, session=frame.session_id, user=self.user_id),
        )

    async def cancel(self, frame: Cancel) -> None:
        """Stop a stream of this user on whichever process runs it; every watcher gets stream.cancelled."""
        live = self.registry.streams.get(frame.session_id)
        if live is not None and live.owner_id == self.user_id:
            if frame.session_id not in self.watches:
                await self._attach(frame.session_id, live.seq, chunks=False)
            self.registry.cancel_local(frame.session_id)
            return
        state = await self.registry.store.read(frame.session_id, 0)
        if state is None or state.owner_id != self.user_id:
            raise ClientError(ErrorCode.NOT_FOUND, "No such session.")
        if frame.session_id not in self.watches:
            await self._attach(frame.session_id, state.first_seq - 1 + len(state.words), chunks=False)
        if state.running:
            await self.registry.store.request_cancel(frame.session_id)

    async def _attach(self, session_id: str, last_seq: int, *, chunks: bool) -> Replay | None:
        """Watch the session from last_seq on; where its stored words came from and how many, None if already
        watched from there."""
        previous = self.watches.get(session_id)
        if previous is not None and not previous.done:
            if previous.last_sent <= last_seq:
                return None  # already following it from at least there
            self._detach(previous)
        live = self.registry.streams.get(session_id)
        if live is not None and live.owner_id == self.user_id:
            watch = Watch(self.send, session_id, last_seq, self._watch_done, chunks=chunks)
            self.watches[session_id] = watch
            terminal = live.terminal
            words = live.words if terminal is None else live.words[: terminal["seq"]]
            items = chunk_frames(session_id, words[last_seq:], last_seq + 1, live.estimated_words)
            if live.life.accepts_listeners:
                live.listeners.add(watch)  # no await since reading the words: nothing slips between
            await watch.replay(items, terminal)  # ended already: the settled terminal, exactly once
            return metrics.LIVE, len(items)
        return await self._attach_remote(session_id, last_seq, chunks=chunks)

    async def _attach_remote(self, session_id: str, last_seq: int, *, chunks: bool) -> Replay:
        store = self.registry.store
        state = await store.read(session_id, last_seq)
        if state is None or state.owner_id != self.user_id:
            await self._raise_missing(session_id)
        watch = RemoteWatch(store, self.send, session_id, last_seq, self._watch_done, chunks=chunks)
        self.watches[session_id] = watch
        if state.running:
            # Join the session's group first, then read the store again: no word falls between the two.
            await self.registry.follow_remote(watch)
            await store.watch_session(session_id)
        await watch.poll()
        return metrics.STORE, len(state.words)

    async def _raise_missing(self, session_id: str) -> NoReturn:
        owner = await database_sync_to_async(selectors.session_owner_id)(session_id)
        if owner == self.user_id:
            raise ClientError(
                ErrorCode.RESUME_EXPIRED, "This session ended too long ago to resume; its script is saved."
            )
        raise ClientError(ErrorCode.NOT_FOUND, "No such session.")

    def _watch_done(self, watch: Watch) -> None:
        if self.watches.get(watch.session_id) is watch:
            del self.watches[watch.session_id]
        if isinstance(watch, RemoteWatch):
            self.registry.unfollow_remote(watch)

    def _detach(self, watch: Watch) -> None:
        watch.detach()
        if isinstance(watch, RemoteWatch):
            self.registry.unfollow_remote(watch)
        live = self.registry.streams.get(watch.session_id)
        if live is not None:
            live.listeners.discard(watch)

    async def close(self) -> None:
        """The socket closed: stop delivering; the generations go on, owned by the registry."""
        for watch in tuple(self.watches.values()):
            self._detach(watch)
        self.watches.clear()
