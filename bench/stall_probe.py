"""The product's ASGI app with a loop-stall probe around it (`bench.run --stalls`): who holds the event loop.

A callback due every PROBE_S measures how late it runs: a late run means something held the loop that long.
Garbage collections are timed through gc.callbacks, so a stall can be told apart from a collection. Every second
and at exit the figures go to the JSON file named by BENCH_STALLS_FILE. Served as `bench.stall_probe:application`.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import gc
import os
import signal
import time
from typing import Any

import orjson

from creatornexus.asgi import application as product

PROBE_S = 0.005
BOUNDS_MS = (5, 10, 20, 50, 100)


class Second:
    """What one wall-clock second saw: the longest lag, lags past each bound, GC pauses by generation."""

    __slots__ = ("gc_count", "gc_cpu_max_ms", "gc_max_ms", "gc_ms", "lags", "max_lag_ms")

    def __init__(self) -> None:
        self.max_lag_ms = 0.0
        self.lags = [0] * len(BOUNDS_MS)
        self.gc_ms = [0.0, 0.0, 0.0]
        self.gc_max_ms = [0.0, 0.0, 0.0]
        self.gc_cpu_max_ms = [0.0, 0.0, 0.0]  # CPU of the collecting thread: what the pause costs unpreempted
        self.gc_count = [0, 0, 0]


class Probe:
    """Loop lag and GC pauses of this process, per wall-clock second (the bench picks its window)."""

    def __init__(self) -> None:
        self.seconds: dict[int, Second] = {}
        self._gc_started = 0.0
        self._gc_cpu_started = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due = 0.0
        self._written = 0

    def _second(self) -> Second:
        key = int(time.time())
        second = self.seconds.get(key)
        if second is None:
            second = self.seconds[key] = Second()
        return second

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_signal_handler(signal.SIGUSR1, self.census)
        self._due = self._loop.time() + PROBE_S
        self._loop.call_at(self._due, self._tick)
        gc.callbacks.append(self._on_gc)
        atexit.register(self.write)

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        lag_ms = (now - self._due) * 1000
        second = self._second()
        second.max_lag_ms = max(second.max_lag_ms, lag_ms)
        for i, bound in enumerate(BOUNDS_MS):
            if lag_ms >= bound:
                second.lags[i] += 1
        self._due = now + PROBE_S
        self._loop.call_at(self._due, self._tick)
        if len(self.seconds) != self._written:
            # Once a second: uvicorn ends by re-raising SIGTERM, so atexit alone would never write.
            self._written = len(self.seconds)
            self.write()

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            self._gc_cpu_started = time.thread_time()
            return
        generation = int(info.get("generation", 0))
        took = (time.perf_counter() - self._gc_started) * 1000
        cpu = (time.thread_time() - self._gc_cpu_started) * 1000
        second = self._second()
        second.gc_ms[generation] += took
        second.gc_max_ms[generation] = max(second.gc_max_ms[generation], took)
        second.gc_cpu_max_ms[generation] = max(second.gc_cpu_max_ms[generation], cpu)
        second.gc_count[generation] += 1

    def census(self) -> None:
        """SIGUSR1: what the collector tracks outside the frozen generation, by type (what a full GC visits)."""
        path = os.environ.get("BENCH_STALLS_FILE")
        if not path:
            return
        counts = collections.Counter(type(obj).__qualname__ for obj in gc.get_objects())
        started = time.perf_counter()
        gc.set_debug(gc.DEBUG_SAVEALL)  # what this collection finds unreachable (cycles) is kept, to be counted
        gc.collect()
        took_ms = (time.perf_counter() - started) * 1000
        garbage = collections.Counter(type(obj).__qualname__ for obj in gc.garbage)
        gc.garbage.clear()
        gc.set_debug(0)
        lines = [f"tracked {sum(counts.values())} frozen {gc.get_freeze_count()} full collection {took_ms:.1f} ms"]
        lines += [f"{count:9d} {name}" for name, count in counts.most_common(40)]
        lines += [f"in cycles (garbage): {sum(garbage.values())}"]
        lines += [f"{count:9d} {name}" for name, count in garbage.most_common(30)]
        with open(path + ".census", "w") as out:
            out.write("\n".join(lines) + "\n")

    def write(self) -> None:
        path = os.environ.get("BENCH_STALLS_FILE")
        if not path:
            return
        rows = {
            str(key): {name: getattr(second, name) for name in Second.__slots__} for key, second in self.seconds.items()
        }
        with open(path, "wb") as out:
            out.write(orjson.dumps({"bounds_ms": BOUNDS_MS, "seconds": rows}))


_probe = Probe()


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if _probe._loop is None and scope["type"] != "lifespan":
        _probe.start()
    await product(scope, receive, send)
