"""The in-memory store for the embedded default: one process, same behaviour as Redis."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from typing import Any

from streaming.store.base import SessionState
from streaming.store.quota import Lease, LeaseKind, LeaseTable, utc_day


class MemoryStore:
    """Sessions in a dict; expired ones are dropped when next touched."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock  # leases expire on it (tests pass their own)
        self._sessions: dict[str, SessionState] = {}
        # A heap of (expiry, session id): purging touches only what has expired, whatever the retention was.
        self._expires: list[tuple[float, str]] = []
        self._cancels: set[str] = set()
        self._processes: dict[str, tuple[float, dict[str, Any]]] = {}
        self._leases: dict[tuple[LeaseKind, int], LeaseTable] = {}
        # Words of each running session already added to its owner's day; words per (user, UTC day).
        self._counted: dict[str, int] = {}
        self._words: dict[tuple[int, str], int] = {}

    async def open_session(
        self, session_id: str, owner_id: int, process_id: str, estimated_words: int, words: list[str]
    ) -> None:
        # The live list itself: in one process there is nothing to copy or flush.
        self._sessions[session_id] = SessionState(session_id, owner_id, process_id, estimated_words, words=words)
        self._counted[session_id] = 0

    async def flush(self) -> None:
        """Nothing to write; only the words of the day are counted, once per tick."""
        for session_id in tuple(self._counted):
            self._count_words(session_id)

    def _count_words(self, session_id: str) -> None:
        state = self._sessions.get(session_id)
        if state is None:
            self._counted.pop(session_id, None)
            return
        new = len(state.words) - self._counted[session_id]
        if new > 0:
            key = (state.owner_id, utc_day())
            if key not in self._words:  # a new day: yesterday's counts are of no more use
                self._words = {known: n for known, n in self._words.items() if known[1] == key[1]}
            self._words[key] = self._words.get(key, 0) + new
            self._counted[session_id] = len(state.words)

    async def close_session(self, session_id: str, terminal: dict[str, Any], retention_s: int) -> dict[str, Any] | None:
        state = self._sessions.get(session_id)
        if state is None:
            return None
        if state.terminal is not None:
            return state.terminal
        if session_id in self._counted:
            self._count_words(session_id)
            del self._counted[session_id]
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

    async def lease_claim(self, lease: Lease, limit: int, ttl_s: float) -> bool:
        return (await self.lease_claim_many([(lease, limit)], ttl_s))[0]

    async def lease_claim_many(self, claims: list[tuple[Lease, int]], ttl_s: float) -> list[bool]:
        now = self._clock()
        return [
            self._leases.setdefault((lease.kind, lease.user_id), LeaseTable()).claim(lease.lease_id, limit, now, ttl_s)
            for lease, limit in claims
        ]

    async def lease_renew(self, leases: list[Lease], ttl_s: float) -> None:
        now = self._clock()
        for lease in leases:
            self._leases.setdefault((lease.kind, lease.user_id), LeaseTable()).renew(lease.lease_id, now, ttl_s)

    async def lease_release(self, lease: Lease) -> None:
        await self.lease_release_many([lease])

    async def lease_release_many(self, leases: list[Lease]) -> None:
        for lease in leases:
            table = self._leases.get((lease.kind, lease.user_id))
            if table is not None:
                table.release(lease.lease_id)
                if not table.expiries:
                    del self._leases[(lease.kind, lease.user_id)]

    async def lease_counts(self, user_id: int) -> dict[LeaseKind, int]:
        now = self._clock()
        return {kind: t.live(now) if (t := self._leases.get((kind, user_id))) else 0 for kind in LeaseKind}

    async def words_used(self, user_id: int, day: str) -> int:
        return self._words.get((user_id, day), 0)

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
