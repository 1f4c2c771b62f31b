"""The StreamStore interface both stores implement."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from streaming.store.quota import Lease, LeaseKind


@dataclass(slots=True)
class SessionState:
    """What a watcher needs to know about a session, as the store holds it."""

    session_id: str
    owner_id: int
    process_id: str
    estimated_words: int
    terminal: dict[str, Any] | None = None
    words: list[str] = field(default_factory=list)
    # seq of words[0]; words after `after_seq` were asked for.
    first_seq: int = 1

    @property
    def running(self) -> bool:
        return self.terminal is None

    def trimmed(self) -> SessionState:
        """Words past the terminal's seq are not part of the session (a fenced owner wrote on for a moment)."""
        if self.terminal is not None:
            keep = max(0, int(self.terminal.get("seq", 0)) - self.first_seq + 1)
            if keep < len(self.words):
                self.words = self.words[:keep]
        return self


class StreamStore(Protocol):
    """Every read and write of shared stream state. Words are written once per tick, never per word."""

    async def open_session(
        self, session_id: str, owner_id: int, process_id: str, estimated_words: int, words: list[str]
    ) -> None:
        """Record a running session of this process; `words` is its live list, which only grows (seq = index + 1)."""

    async def flush(self) -> None:
        """Write the new words of every running session of this process, all in one round trip, and add them
        to their owners' words of the UTC day (the daily budget counts these, never the estimate)."""

    async def close_session(self, session_id: str, terminal: dict[str, Any], retention_s: int) -> dict[str, Any] | None:
        """Flush, then set the terminal frame unless one is set already (first wins); keep for retention.

        None when ours was stored (or, the store being down, will be on a later tick); else the frame that won.
        """

    async def read(self, session_id: str, after_seq: int) -> SessionState | None:
        """The session and its words with seq > after_seq, or None when unknown or expired."""

    async def request_cancel(self, session_id: str) -> None:
        """Flag a session for cancel; its owning process acts on it."""

    async def watch_session(self, session_id: str) -> None:
        """Say a watcher on another process wants wake-ups for this session."""

    async def pending_controls(self, session_ids: list[str]) -> tuple[list[str], list[str], list[str]]:
        """Of these running sessions of this process: which have a cancel flag, which have remote watchers, and
        which another process already ended (fenced: their terminal is stored)."""

    async def running_sessions(self) -> dict[str, str]:
        """Every running session id with the process that owns it."""

    async def heartbeat(self, process_id: str, info: dict[str, Any], ttl_s: int) -> None:
        """Say this process is alive (with its counters) for ttl_s more seconds."""

    async def processes(self) -> dict[str, dict[str, Any]]:
        """Every live process with the info of its last heartbeat."""

    async def forget_process(self, process_id: str) -> None:
        """Drop a process on clean shutdown."""

    async def lease_claim(self, lease: Lease, limit: int, ttl_s: float) -> bool:
        """Hold `lease` for ttl_s if fewer than `limit` leases of its kind and user are live (0 = no limit).

        Atomic across processes: two claims for the last free place never both succeed.
        """

    async def lease_claim_many(self, claims: list[tuple[Lease, int]], ttl_s: float) -> list[bool]:
        """lease_claim for each (lease, limit), in order, in one round trip: whether each is held."""

    async def lease_renew(self, leases: list[Lease], ttl_s: float) -> None:
        """Extend this process's leases by ttl_s, all in one round trip; a lost one is written again."""

    async def lease_release(self, lease: Lease) -> None:
        """Give a lease back at once (its stream ended, its socket closed)."""

    async def lease_release_many(self, leases: list[Lease]) -> None:
        """lease_release for each, in one round trip."""

    async def lease_counts(self, user_id: int) -> dict[LeaseKind, int]:
        """The user's live leases of each kind, over every process."""

    async def words_used(self, user_id: int, day: str) -> int:
        """Words generated for the user on this UTC day (counted at each flush, from the words written)."""

    async def ping(self) -> None:
        """Raise when the store does not answer."""

    async def aclose(self) -> None:
        """Release connections."""
