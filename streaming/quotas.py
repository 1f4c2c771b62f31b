"""Per-user quotas over the whole cluster: leases on running streams and open sockets, a daily word budget.

The counts live in the store (Redis, or memory in embedded mode), never in one process: N processes allow a
user the same five streams and twenty sockets as one. A quota is protection against overuse, not access
control: when the store cannot be reached it is not enforced (the service keeps serving), and the next renewal
writes the leases taken meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings

from streaming import protocol
from streaming.passbatch import PassBatch
from streaming.store import StreamStore
from streaming.store.quota import Lease, LeaseKind, next_utc_midnight, utc_day

logger = logging.getLogger(__name__)

# Renewals per lease lifetime: two may fail before a living process's lease lapses.
RENEWALS_PER_TTL = 3
# A claim waits this long at most for this process's own releases still in flight (a stream that just ended).
PENDING_RELEASE_WAIT_S = 1.0

LIMIT_SETTINGS = {LeaseKind.STREAMS: "MAX_STREAMS_PER_USER", LeaseKind.SOCKETS: "MAX_CONNECTIONS_PER_USER"}


def lease_ttl_s() -> float:
    return float(settings.STREAMING["QUOTA_LEASE_TTL_S"])


def renew_interval_s() -> float:
    return lease_ttl_s() / RENEWALS_PER_TTL


def limit_of(kind: LeaseKind) -> int:
    return int(settings.STREAMING[LIMIT_SETTINGS[kind]])


class Leases:
    """The quota leases of this process: claimed against the cluster-wide count, renewed, released.

    What is renewed comes from `held()` (the registry's running streams and open sockets), not from a list of
    its own: a stream or socket that ended without a release stops being renewed and lapses by itself.
    """

    def __init__(self, store: StreamStore, held: Callable[[], list[Lease]]) -> None:
        self._store = store
        self._held = held
        # A release never lands before a renewal that read the lease earlier (which would write it back).
        self._lock = asyncio.Lock()
        self._releasing: set[asyncio.Task[None]] = set()
        # A handshake storm's claims share a script call per loop pass instead of queueing for pool connections,
        # and the releases of many ends one more.
        self._claims: PassBatch[Lease, bool] = PassBatch(self._claim_all, "lease-claims")
        self._releases: PassBatch[Lease, None] = PassBatch(self._release_all, "lease-releases")

    async def claim(self, lease: Lease) -> bool:
        """Hold one more stream or socket for the user, unless the user is at the limit of its kind."""
        if self._releasing:  # a stream of ours that just ended still counts until its release lands
            await asyncio.wait(set(self._releasing), timeout=PENDING_RELEASE_WAIT_S)
        try:
            return await self._claims.submit(lease)
        except Exception as exc:
            logger.warning("quota store unreachable (%s); %s lease not counted yet", type(exc).__name__, lease.kind)
            return True

    async def _claim_all(self, leases: list[Lease]) -> list[bool]:
        claims = [(lease, limit_of(lease.kind)) for lease in leases]
        return await self._store.lease_claim_many(claims, lease_ttl_s())

    async def release(self, lease: Lease) -> None:
        try:
            await self._releases.submit(lease)
        except Exception as exc:
            # Nothing renews it any more: it lapses within QUOTA_LEASE_TTL_S.
            logger.warning("releasing a %s lease failed (%s); it will lapse", lease.kind, type(exc).__name__)

    async def _release_all(self, leases: list[Lease]) -> list[None]:
        async with self._lock:  # taken once per batch of releases
            await self._store.lease_release_many(leases)
        return [None] * len(leases)

    def release_soon(self, lease: Lease) -> None:
        """Release from synchronous code (a generation's done callback); owned here until it lands."""
        task = asyncio.create_task(self.release(lease), name=f"release-{lease.kind}")
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def renew(self) -> None:
        """Extend every lease this process holds, in one round trip (the registry calls this every few seconds)."""
        async with self._lock:
            held = self._held()
            if held:
                await self._store.lease_renew(held, lease_ttl_s())

    async def aclose(self) -> None:
        """Clean shutdown: land pending releases, then give back whatever is still held, not waiting for lapse."""
        if self._releasing:
            await asyncio.wait(set(self._releasing), timeout=PENDING_RELEASE_WAIT_S)
        for lease in self._held():
            await self.release(lease)


async def check_word_budget(store: StreamStore, user_id: int) -> None:
    """Raise quota_exceeded when the user's words of the UTC day reached USER_DAILY_WORD_LIMIT.

    Checked at `generate` only: a generation that starts within the budget runs to its end.
    """
    limit = int(settings.STREAMING["DAILY_WORD_LIMIT"])
    if limit <= 0:
        return
    now = datetime.now(UTC)
    try:
        used = await store.words_used(user_id, utc_day(now))
    except Exception as exc:
        logger.warning("quota store unreachable (%s); word budget not checked", type(exc).__name__)
        return
    if used >= limit:
        raise protocol.quota_exceeded(limit, next_utc_midnight(now))


@dataclass(frozen=True, slots=True)
class Usage:
    """A user's figures against each quota, as GET /api/usage/ shows them (limits: None = no limit)."""

    words_used: int
    words_limit: int | None
    resets_at: datetime
    streams_running: int
    streams_limit: int | None
    sockets_open: int
    sockets_limit: int | None


async def usage_of(store: StreamStore, user_id: int) -> Usage:
    """The user's usage over the whole cluster, now."""
    now = datetime.now(UTC)
    words = await store.words_used(user_id, utc_day(now))
    leases = await store.lease_counts(user_id)
    word_limit = int(settings.STREAMING["DAILY_WORD_LIMIT"])
    return Usage(
        words_used=words,
        words_limit=word_limit or None,
        resets_at=next_utc_midnight(now),
        streams_running=leases[LeaseKind.STREAMS],
        streams_limit=limit_of(LeaseKind.STREAMS) or None,
        sockets_open=leases[LeaseKind.SOCKETS],
        sockets_limit=limit_of(LeaseKind.SOCKETS) or None,
    )
