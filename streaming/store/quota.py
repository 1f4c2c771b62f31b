"""Quota bookkeeping free of I/O: lease rules (memory.py runs them, redis.py's Lua mirrors them) and the UTC day.

A lease is one running stream or one open socket of a user, held by the process that runs it until an expiry.
The process renews its leases well before they expire; a process that dies renews nothing, so its share of
every user's quota lapses by itself. Generated words are counted per user per UTC day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class LeaseKind(StrEnum):
    """What a lease counts; the value is part of its store key."""

    STREAMS = "streams"
    SOCKETS = "sockets"


@dataclass(frozen=True, slots=True)
class Lease:
    """One stream (lease id = session id) or one socket (lease id = connection id) of a user."""

    kind: LeaseKind
    user_id: int
    lease_id: str


@dataclass
class LeaseTable:
    """One user's leases of one kind: lease id -> expiry (seconds on the store's clock)."""

    expiries: dict[str, float] = field(default_factory=dict)

    def claim(self, lease_id: str, limit: int, now: float, ttl_s: float) -> bool:
        """Hold `lease_id` until now + ttl_s if fewer than `limit` leases are live (0 = no limit).

        A lease already held is only extended: claiming twice never counts twice.
        """
        self._purge(now)
        if limit > 0 and lease_id not in self.expiries and len(self.expiries) >= limit:
            return False
        self.expiries[lease_id] = now + ttl_s
        return True

    def renew(self, lease_id: str, now: float, ttl_s: float) -> None:
        """Extend a lease; one that lapsed (or that the store lost) is written again: its owner still runs it."""
        self.expiries[lease_id] = now + ttl_s

    def release(self, lease_id: str) -> None:
        self.expiries.pop(lease_id, None)

    def live(self, now: float) -> int:
        self._purge(now)
        return len(self.expiries)

    def _purge(self, now: float) -> None:
        for lease_id in [lease_id for lease_id, until in self.expiries.items() if until <= now]:
            del self.expiries[lease_id]


def utc_day(now: datetime | None = None) -> str:
    """The UTC day words are counted against, as YYYY-MM-DD."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d")


def next_utc_midnight(now: datetime | None = None) -> datetime:
    """When today's word budget resets."""
    today = (now or datetime.now(UTC)).astimezone(UTC)
    return datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)
