"""CPU of one RedisStore.flush at 1,000 and 2,000 running sessions (a measurement, not a test).

Between flushes every session's live list grows by 2 words, as the runner's emit_words does at 40 words/s and
50 ms ticks; 4 sessions per user, as bench.loadgen logs in. Printed per size: the process's CPU time per flush
(median of the runs' medians), the CPU and Redis connections of a burst of concurrent starts, and the CPU of
a burst of concurrent ends (terminal frames and lease releases).

    BENCH_REDIS_URL=redis://127.0.0.1:6379/11 .venv/bin/python -m bench.flush_cost

The database at BENCH_REDIS_URL is flushed first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

import bench.standalone  # noqa: F401  (the path, settings module and throwaway keys, before Django)

SESSIONS_PER_USER = 4
TICK_WORDS = ["word ", "more "]  # 40 words/s at 50 ms ticks


def connections_of(store: Any) -> int:
    """Connections the store's pool has opened (idle or in use)."""
    pool = store._redis.connection_pool
    return len(pool._available_connections) + len(pool._in_use_connections)


async def start(store: Any, leases: Any, index: int, words: list[str]) -> None:
    """What a stream start asks of the store: the day's words, a stream lease (through the process's Leases, as
    the product claims it), the session."""
    from streaming.store.quota import Lease, LeaseKind, utc_day

    user_id = index // SESSIONS_PER_USER
    await store.words_used(user_id, utc_day())
    await leases.claim(Lease(LeaseKind.STREAMS, user_id, f"bench-{index}"))
    await store.open_session(f"bench-{index}", user_id, "bench-proc", 200, words)


async def end(store: Any, leases: Any, index: int) -> None:
    """What a stream end asks of the store: its terminal frame (after its last words), the lease back (through
    the process's Leases, as the product releases it)."""
    from streaming.store.quota import Lease, LeaseKind

    session_id = f"bench-{index}"
    await store.close_session(session_id, {"type": "stream.completed", "session_id": session_id, "seq": 1}, 60)
    await leases.release(Lease(LeaseKind.STREAMS, index // SESSIONS_PER_USER, session_id))


async def one_size(url: str, sessions: int, flushes: int, runs: int) -> tuple[float, float, int, float]:
    """Median CPU ms per flush over `runs` runs of `flushes` flushes; CPU ms and connections of the burst of
    starts; CPU ms of the burst of ends."""
    import redis

    from streaming.quotas import Leases
    from streaming.store.redis import RedisStore

    redis.Redis.from_url(url).flushdb()
    store = RedisStore(url)
    leases = Leases(store, list)
    lists: list[list[str]] = [[] for _ in range(sessions)]
    burst_started = time.process_time()
    await asyncio.gather(*(start(store, leases, i, words) for i, words in enumerate(lists)))
    burst_ms = (time.process_time() - burst_started) * 1000
    opened = connections_of(store)
    medians = []
    try:
        for _run in range(runs):
            costs = []
            for _flush in range(flushes):
                for words in lists:
                    words.extend(TICK_WORDS)  # as emit_words does: the store holds this very list
                started = time.process_time()
                await store.flush()
                costs.append(time.process_time() - started)
            medians.append(statistics.median(costs))
        ends_started = time.process_time()
        await asyncio.gather(*(end(store, leases, i) for i in range(sessions)))
        ends_ms = (time.process_time() - ends_started) * 1000
    finally:
        await store.aclose()
    return statistics.median(medians) * 1000, burst_ms, opened, ends_ms


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,2000")
    parser.add_argument("--flushes", type=int, default=40, help="flushes per run")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
    for sessions in (int(size) for size in args.sizes.split(",")):
        cpu_ms, burst_ms, opened, ends_ms = await one_size(url, sessions, args.flushes, args.runs)
        print(
            f"{sessions} sessions: {cpu_ms:.2f} ms CPU per flush; "
            f"their burst of starts: {burst_ms:.0f} ms CPU, {opened} connections opened; "
            f"their burst of ends: {ends_ms:.0f} ms CPU"
        )


if __name__ == "__main__":
    import django

    django.setup()
    asyncio.run(main())
