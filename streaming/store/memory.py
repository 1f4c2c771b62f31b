"""The in-memory store for the embedded default: one process, same behaviour as Redis."""

from __future__ import annotations

import heapq
import time
from typing import Any

from streaming.store.base import SessionState


class MemoryStore:
    """Sessions in a dict; expired ones are dropped when next touched."""

    def __init__(self) -> None:
        self._sessions: dict[str, SessionState] = {}
        # A heap of (expiry, session id): purging touches only what has expired, whatever the retention was.
        self._expires: list[tuple[float, str]] = []
        self._cancels: set[str] = set()
        self._processes: dict[str, tuple[float, dict[str, Any]]] = {}

    async def open_session(
        self, session_id: str, owner_id: int, process_id: str, estimated_words: int, words: list[str]
    ) -> None:
        # The live list itself: in one process there is nothing to copy or flush.
        self._sessions[session_id] = SessionState(session_id, owner_id, process_id, estimated_words, words=words)

    async def flush(self) -> None:
        return None

    async def close_session(self, session_id: str, terminal: dict[str, Any], retention_s: int) -> dict[str, Any] | None:
        state = self._sessions.get(session_id)
        if state is None:
            return None
        if state.terminal is not None:
            return state.terminal
        state.terminal = terminal
        heapq.heappush(self._expires, (time.monotonic() + retention_s, session_id))
        self._cancels.discard(session_id)
        self._purge()
        return None

    async def read(self, session_id: str, after_seq: int) -> SessionState | None:
        self._purge()
        state = self._sessions.get(session_id)
        if state is None:
            return None
        return SessionState(
            session_id,
            state.owner_id,
            state.process_id,
            state.estimated_words,
            terminal=state.terminal,
            words=state.words[after_seq:],
            first_seq=after_seq + 1,
        ).trimmed()

    async def request_cancel(self, session_id: str) -> None:
        if session_id in self._sessions:
            self._cancels.add(session_id)

    async def watch_session(self, session_id: str) -> None:
        return None

    async def pending_controls(self, session_ids: list[str]) -> tuple[list[str], list[str], list[str]]:
        ended = [sid for sid in session_ids if (s := self._sessions.get(sid)) is not None and s.terminal is not None]
        return [sid for sid in session_ids if sid in self._cancels], [], ended

    async def running_sessions(self) -> dict[str, str]:
        return {sid: s.process_id for sid, s in self._sessions.items() if s.terminal is None}

    async def heartbeat(self, process_id: str, info: dict[str, Any], ttl_s: int) -> None:
        self._processes[process_id] = (time.monotonic() + ttl_s, info)

    async def processes(self) -> dict[str, dict[str, Any]]:
        now = time.monotonic()
        return {pid: info for pid, (until, info) in self._processes.items() if until > now}

    async def forget_process(self, process_id: str) -> None:
        self._processes.pop(process_id, None)

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def _purge(self) -> None:
        """Drop ended sessions past retention: only the expired top of the heap is touched."""
        now = time.monotonic()
        while self._expires and self._expires[0][0] <= now:
            _until, sid = heapq.heappop(self._expires)
            self._sessions.pop(sid, None)
