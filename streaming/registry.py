"""The per-process registry: owns running generations (so they outlive sockets) and the process's loops."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from accounts import revocation
from creatornexus import logcontext
from streaming import metrics, quotas, services, sweeps
from streaming.pacer import close_pacer
from streaming.perloop import PerLoop
from streaming.protocol import CloseCode, ErrorCode
from streaming.providers.base import Provider
from streaming.row_pacing import RowPacing
from streaming.runner import LiveStream, run_generation
from streaming.session_rows import close_session_rows
from streaming.store import StreamStore, get_store
from streaming.store.quota import Lease, LeaseKind
from streaming.sweeps import group_name

logger = logging.getLogger(__name__)

# Cross-process control (cancel flags, "somebody elsewhere watches") is checked this often.
CONTROL_INTERVAL_S = 0.25
# Sessions per control read: 2,000 streams' flags in one MGET would hold the loop ~5 ms packing and parsing.
CONTROL_BATCH = 250
HOUSEKEEPING_INTERVAL_S = 1.0
# The 1 s pass over every connection (pings, idle timeouts) and remote watch is spread over this many steps,
# so 2,000 sockets are visited 200 at a time, 100 ms apart, and no step holds the loop for long.
HOUSEKEEPING_STEPS = 10
# Connection rows are written on the database loop (never in the way of words or heartbeats), once no socket
# opened or closed for this long (streaming/row_pacing.py): a handshake storm's rows wait until it is over.
ROWS_INTERVAL_S = 0.5
# Every open socket's login and account are checked against the database this often (accounts/revocation.py):
# a revocation closes sockets on every process within this plus one query, well inside the promised 5 s.
REVOCATION_INTERVAL_S = 2.0
# Generations get this long to end on their own when the registry closes, before they are cancelled outright.
CLOSE_TIMEOUT_S = 5.0
# A step of the close that starts after its deadline still gets this long (a healthy one takes milliseconds).
MIN_STEP_S = 0.1
# How long the registry's own loops get to end once cancelled (each is at an await: it ends on the next turn).
LOOP_END_S = 1.0
# Backoff of the process channel's reader while the channel layer (Redis) is unreachable.
LAYER_RETRY_FIRST_S = 0.5
LAYER_RETRY_MAX_S = 5.0
# The drain's bounds beyond the grace: ending stopped generations, each close handshake, the last flush.
DRAIN_STOP_WAIT_S = 5.0
DRAIN_CLOSE_WAIT_S = 2.0
DRAIN_FLUSH_WAIT_S = 3.0

__all__ = ["ProcessRegistry", "close_registry", "get_registry", "group_name"]


class ProcessRegistry:
    """Everything this process runs: generations, its connections' heartbeats, its share of cluster upkeep."""

    def __init__(self, store: StreamStore) -> None:
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.store = store
        self.streams: dict[str, LiveStream] = {}
        self.connections: set[Any] = set()
        # Remote watches on this process by session; the process channel is in each of those sessions' groups.
        self.remote: dict[str, set[Any]] = {}
        self.channel_name: str | None = None
        self._channel_ready = asyncio.Event()
        self.started_at = time.time()
        # When the heartbeat last reached the store (monotonic): /metrics shows its age.
        self.heartbeat_at = time.monotonic()
        self._loops: list[asyncio.Task[None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_row_sweep = 0.0
        # Sockets opening now were just checked at their handshake: the first pass comes one interval later.
        self._next_revocation_pass = time.monotonic() + REVOCATION_INTERVAL_S
        self._swept_at_start = False
        # Connection rows wait here for the next tick: one DB hop per tick, not one per handshake.
        self._opened: list[services.ConnectionOpened] = []
        self._closed: list[services.ConnectionClosed] = []
        self._rows_lock = asyncio.Lock()
        self._row_pacing = RowPacing()
        self.leases = quotas.Leases(store, self._leases_held)
        self._housekeeping_step = 0
        self._housekeeping_round: tuple[tuple[Any, ...], tuple[Any, ...]] = ((), ())

    def start(self) -> None:
        tune_garbage_collection()
        liveness_s = settings.STREAMING["PROCESS_TTL_S"] / 3
        every = self._every
        self._loops = [
            asyncio.create_task(every(settings.STREAMING["FLUSH_INTERVAL_MS"] / 1000, self._flush), name="flush"),
            asyncio.create_task(every(CONTROL_INTERVAL_S, self._control), name="control"),
            asyncio.create_task(every(HOUSEKEEPING_INTERVAL_S / HOUSEKEEPING_STEPS, self._tick), name="tick"),
            asyncio.create_task(self._receive_wakes(), name="wakes"),
            # Alone on its loop, with no database call: nothing else can make this process look dead.
            asyncio.create_task(every(liveness_s, self._beat), name="heartbeat"),
            asyncio.create_task(every(liveness_s, self._sweep_store), name="store-sweep"),
            # This process's share of every user's quotas: renewed, so it lapses only if the process dies.
            asyncio.create_task(every(quotas.renew_interval_s(), self.leases.renew), name="leases"),
            # Every upkeep write to the database: a slow database delays rows, never words or heartbeats.
            asyncio.create_task(every(ROWS_INTERVAL_S, self._database), name="database"),
        ]

    async def aclose(self) -> None:
        """End every generation (shutting_down) and stop every loop of this process (tests, shutdown)."""
        generations = [live.task for live in self.streams.values() if live.task]
        for live in tuple(self.streams.values()):
            live.stop(ErrorCode.SHUTTING_DOWN)
        if generations:
            await asyncio.wait(generations, timeout=CLOSE_TIMEOUT_S)
        tasks = generations + list(self._tasks)
        for task in tasks + self._loops:
            task.cancel()
        # One deadline for what follows: a stuck piece is named and left, and the process still stops in time.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_TIMEOUT_S

        def left() -> float:
            return max(deadline - loop.time(), MIN_STEP_S)

        await _ended(tasks, left())  # a cancelled generation still stores its terminal frame and row
        # A loop ends at its next await once cancelled: one that has not within LOOP_END_S is stuck, and must not
        # take the time of the rows, words and leases below (a heartbeat once held all of it: rows were lost).
        await _ended(self._loops, min(LOOP_END_S, left()))
        close_pacer()
        await _within(close_session_rows(), "the last session rows", left())
        await _within(self.store.flush(), "the last words", left())
        await _within(self.write_connection_rows(), "the last connection rows", left())
        await _within(self.leases.aclose(), "giving back quota leases", left())
        await _within(self.store.forget_process(self.process_id), f"unregistering process {self.process_id}", left())

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run a short piece of work in the background, owned here (cancelled by aclose)."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------ remote watches

    async def follow_remote(self, watch: Any) -> None:
        """Wake `watch` (a RemoteWatch) when its session's writer, on any process, flushes new words."""
        watches = self.remote.setdefault(watch.session_id, set())
        watches.add(watch)
        layer = get_channel_layer()
        if len(watches) == 1 and layer is not None:
            await self._channel_ready.wait()
            await layer.group_add(group_name(watch.session_id), str(self.channel_name))

    def unfollow_remote(self, watch: Any) -> None:
        watches = self.remote.get(watch.session_id)
        if watches is None or watch not in watches:
            return
        watches.discard(watch)
        layer = get_channel_layer()
        if not watches:
            del self.remote[watch.session_id]
            if layer is not None and self.channel_name:
                self.spawn(layer.group_discard(group_name(watch.session_id), self.channel_name))

    async def _receive_wakes(self) -> None:
        """One channel per process: every stream.wake for a session watched here polls its watches."""
        layer = get_channel_layer()
        if layer is None:
            return
        self.channel_name = await layer.new_channel(prefix="streaming-process")
        self._channel_ready.set()
        delay = LAYER_RETRY_FIRST_S
        task = asyncio.current_task()
        while True:
            _end_if_cancelled(task)  # a cancel the layer's Redis calls swallowed (see _every)
            try:
                message = await layer.receive(self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Redis is away: keep this process's sockets; the 1 s safety poll covers the gap.
                logger.warning("channel layer receive failed (%s); retrying in %.1fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, LAYER_RETRY_MAX_S)
                continue
            delay = LAYER_RETRY_FIRST_S
            if message.get("type") == "stream.wake":
                for watch in tuple(self.remote.get(message.get("session_id", ""), ())):
                    await self._guarded(watch.poll(), "watch poll")

    # ------------------------------------------------------------ generations

    def start_stream(self, live: LiveStream, provider: Provider, fallback: Provider | None) -> None:
        """Start a generation owned by this registry, not by the socket that asked for it."""
        self.streams[live.session_id] = live
        metrics.STREAMS_STARTED.inc()
        live.task = asyncio.create_task(run_generation(live, self.store, provider, fallback), name=live.session_id)
        live.task.add_done_callback(lambda _task: self._ended(live))

    def _ended(self, live: LiveStream) -> None:
        self.streams.pop(live.session_id, None)
        self.leases.release_soon(Lease(LeaseKind.STREAMS, live.owner_id, live.session_id))
        if live.remote_watched:
            self.spawn(sweeps.wake(live.session_id))

    def cancel_local(self, session_id: str) -> bool:
        live = self.streams.get(session_id)
        return live is not None and live.stop()

    def _leases_held(self) -> list[Lease]:
        """The leases this process must keep alive: one per running stream, one per open socket."""
        streams = [Lease(LeaseKind.STREAMS, live.owner_id, sid) for sid, live in self.streams.items()]
        sockets = [Lease(LeaseKind.SOCKETS, c.user_id, c.connection_id) for c in self.connections]
        return streams + sockets

    async def cancel_anywhere(self, session_id: str) -> None:
        """Stop a generation wherever it runs: here at once, on another process through the store (its owner's
        control loop acts within CONTROL_INTERVAL_S). Without Redis every generation runs here."""
        if not self.cancel_local(session_id) and settings.REDIS_URL:
            await self.store.request_cancel(session_id)

    # ------------------------------------------------------------ loops

    @staticmethod
    async def _every(interval_s: float, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` every interval_s until cancelled; a failed step is logged and retried next tick.

        A cancel that a step swallowed still ends the loop: Python 3.11's asyncio.wait_for (under every
        redis-py command, as its socket timeout) drops a cancel that lands as the command completes, and the
        heartbeat then went back to sleep, outliving the registry's close (5 s, then rows were lost)."""
        task = asyncio.current_task()
        while True:
            await asyncio.sleep(interval_s)
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("%s step failed; retrying next tick", step.__name__, exc_info=True)
            _end_if_cancelled(task)

    def log_open(self, row: services.ConnectionOpened) -> None:
        self._opened.append(row)
        self._row_pacing.logged(time.monotonic())

    def log_close(self, row: services.ConnectionClosed) -> None:
        self._closed.append(row)
        self._row_pacing.logged(time.monotonic())

    async def write_connection_rows(self) -> None:
        """Write the pending rows; when it returns, every row logged before the call is committed."""
        async with self._rows_lock:
            if not self._opened and not self._closed:
                return
            opened, closed = self._opened, self._closed
            self._opened, self._closed = [], []
            self._row_pacing.taken()
            try:
                await database_sync_to_async(services.connections_record)(opened=opened, closed=closed)
            except Exception:
                self._opened, self._closed = opened + self._opened, closed + self._closed
                self._row_pacing.logged(time.monotonic())
                raise

    async def _flush(self) -> None:
        """Write this tick's words of every stream in one round trip, then wake remote watchers once."""
        await self.store.flush()
        now = time.monotonic()
        for live in tuple(self.streams.values()):
            metrics.count_words(live.tally, live.seq, now)
            if live.remote_watched and live.seq > live.woken_seq:
                live.woken_seq = live.seq
                await sweeps.wake(live.session_id)

    async def _control(self) -> None:
        """Act on what other processes asked of our streams: cancel, watch, or "we ended it" (fencing)."""
        if not self.streams or not settings.REDIS_URL:
            return
        running = list(self.streams)
        for first in range(0, len(running), CONTROL_BATCH):
            await self._control_some(running[first : first + CONTROL_BATCH])

    async def _control_some(self, session_ids: list[str]) -> None:
        cancelled, watched, ended = await self.store.pending_controls(session_ids)
        for session_id in ended:
            live = self.streams.get(session_id)
            if live is not None and live.fence():
                logger.warning(
                    "session %s was ended by another process; stopping it here",
                    session_id,
                    extra=logcontext.about(connection=live.connection_id, session=session_id, user=live.owner_id),
                )
        for session_id in cancelled:
            self.cancel_local(session_id)
        for session_id in watched:
            live = self.streams.get(session_id)
            if live is not None:
                live.remote_watched = True

    async def _tick(self) -> None:
        """Every second, in HOUSEKEEPING_STEPS steps: server pings and idle timeouts, and a safety poll of every
        remote watch. Each step visits its share of what was there when the second began."""
        step = self._housekeeping_step
        self._housekeeping_step = (step + 1) % HOUSEKEEPING_STEPS
        if step == 0:
            watches = tuple(watch for group in self.remote.values() for watch in group)
            self._housekeeping_round = (tuple(self.connections), watches)
        connections, watches = self._housekeeping_round
        now = time.monotonic()
        for connection in connections[step::HOUSEKEEPING_STEPS]:
            if connection in self.connections:
                await self._guarded(connection.tick(now), "connection tick")
        for watch in watches[step::HOUSEKEEPING_STEPS]:
            if not watch.done:
                await self._guarded(watch.poll(), "watch poll")

    async def _guarded(self, work: Awaitable[Any], what: str) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("%s failed; the next tick tries again", what, exc_info=True)

    async def _sweep_store(self) -> None:
        await sweeps.sweep_lost_sessions(self.store, self.process_id)

    async def _database(self) -> None:
        """Connection rows, revoked sockets, then (every few seconds) rows left running by processes that are gone."""
        now = time.monotonic()
        if self._row_pacing.due(now, ROWS_INTERVAL_S):
            await self._guarded(self.write_connection_rows(), "connection rows")
        if now >= self._next_revocation_pass:
            self._next_revocation_pass = now + REVOCATION_INTERVAL_S
            await self._guarded(revocation.close_revoked(tuple(self.connections)), "revocation pass")
        if now < self._next_row_sweep:
            return
        ttl = settings.STREAMING["PROCESS_TTL_S"]
        self._next_row_sweep = now + max(1.0, ttl / 2)
        if settings.REDIS_URL:
            alive = [*await self.store.processes(), self.process_id]
            await sweeps.sweep_orphan_rows(self.store, alive, older_than_s=ttl)
        elif not self._swept_at_start:
            # One process holds everything in memory: rows another (earlier) process left running are lost.
            self._swept_at_start = True
            await sweeps.sweep_orphan_rows(self.store, [self.process_id], older_than_s=time.time() - self.started_at)

    async def heartbeat(self) -> None:
        await self.store.heartbeat(self.process_id, self.info(), settings.STREAMING["PROCESS_TTL_S"])
        self.heartbeat_at = time.monotonic()

    async def _beat(self) -> None:
        """The scheduled heartbeat, and how late it reached the store: a stalled loop shows here before it kills."""
        due = self.heartbeat_at + settings.STREAMING["PROCESS_TTL_S"] / 3
        await self.heartbeat()
        metrics.HEARTBEAT_DELAY.observe(max(0.0, self.heartbeat_at - due))

    def info(self) -> dict[str, Any]:
        return {
            "process_id": self.process_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": self.started_at,
            "connections": len(self.connections),
            "streams": len(self.streams),
        }

    # ------------------------------------------------------------ drain (SIGTERM, streaming/drain.py)

    # From the first SIGTERM/SIGINT on: new sockets and generations are refused and /readyz answers 503.
    draining = False

    async def drain(self, grace_s: float) -> None:
        """Stop taking work, let generations end within grace_s (then end them shutting_down), leave the cluster.

        With Redis, sockets close at once with 1012: their clients resume on another process while the words go
        on flowing through Redis. Without it there is nowhere else to go: sockets stay until their streams end.
        """
        self.draining = True
        loop = asyncio.get_running_loop()
        grace_ends = loop.time() + grace_s
        clustered = bool(settings.REDIS_URL)
        logger.info("draining %d streams, %d sockets (grace %ss)", len(self.streams), len(self.connections), grace_s)
        try:
            if clustered:
                await self._leave_all(CloseCode.SERVICE_RESTART)
            if not await self._generations_ended(grace_ends - loop.time()):
                stopped = [live for live in tuple(self.streams.values()) if live.stop(ErrorCode.SHUTTING_DOWN)]
                logger.warning("grace of %ss over: %d streams end shutting_down", grace_s, len(stopped))
                await self._generations_ended(DRAIN_STOP_WAIT_S)
            await self._leave_all(CloseCode.SERVICE_RESTART if clustered else CloseCode.GOING_AWAY)
            if self._tasks:  # the last wake-ups of watchers elsewhere
                await asyncio.wait(set(self._tasks), timeout=DRAIN_CLOSE_WAIT_S)
            await self._flushed(DRAIN_FLUSH_WAIT_S)
        finally:
            # Loops stop first, so no heartbeat puts the process back after it left the process list.
            await self.aclose()
        logger.info("drained; this process has left the cluster")

    async def _generations_ended(self, timeout_s: float) -> bool:
        """Wait until no generation runs here (True), or timeout_s passed (False)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        while self.streams:
            tasks = {live.task for live in self.streams.values() if live.task is not None}
            if not tasks or loop.time() >= end:
                return False
            await asyncio.wait(tasks, timeout=end - loop.time())
        return True

    async def _leave_all(self, code: CloseCode) -> None:
        """Close every socket with `code`, all at once, and wait for each goodbye (so its row is logged)."""

        async def leave(connection: Any) -> None:
            try:
                async with asyncio.timeout(DRAIN_CLOSE_WAIT_S):
                    await connection.leave(code)
            except TimeoutError:
                logger.info("a socket did not finish its close handshake within %ss", DRAIN_CLOSE_WAIT_S)

        closing = [connection for connection in self.connections if not connection.leaving]
        await asyncio.gather(*(self._guarded(leave(connection), "closing a socket") for connection in closing))

    async def _flushed(self, timeout_s: float) -> None:
        """The last words and terminal frames reach the store before the process leaves the process list."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while True:
                    try:
                        await self.store.flush()
                    except Exception:
                        logger.warning("final flush failed; retrying", exc_info=True)
                        await asyncio.sleep(settings.STREAMING["FLUSH_INTERVAL_MS"] / 1000)
                    else:
                        return


def _end_if_cancelled(task: asyncio.Task[Any] | None) -> None:
    """Raise CancelledError if `task` was cancelled and something under it swallowed the cancel (Python 3.11's
    wait_for does, when the call it wraps completes at that moment: redis-py wraps every command in it)."""
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _ended(tasks: list[asyncio.Task[Any]], within_s: float) -> None:
    """Wait for cancelled tasks to end, at most within_s: a task that goes on after its cancel (finishing a write,
    a client's own cleanup) must not keep aclose() from finishing; those left are named in a warning."""
    if not tasks:
        return
    done, stuck = await asyncio.wait(tasks, timeout=within_s)
    for task in done:
        _retrieved(task)
    if stuck:
        names = sorted(f"{task.get_name()} at {_where(task)}" for task in stuck)
        logger.warning(
            "%d tasks did not end within %.1fs of their cancel, left behind: %s", len(stuck), within_s, names
        )
        for task in stuck:
            task.add_done_callback(_retrieved)


async def _within(work: Coroutine[Any, Any, Any], what: str, within_s: float) -> None:
    """One step of a shutdown, waited for at most within_s, then cancelled: a database write queued behind a call
    stuck on a lock (there is one database thread) or a store that stopped answering must not keep aclose() from
    finishing. Its failure is logged, never raised."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=within_s)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        logger.warning("%s did not finish within %.1fs; the process goes on stopping without it", what, within_s)
        task.cancel()
        task.add_done_callback(_retrieved)
        return
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.warning("%s failed", what, exc_info=error)


def _where(task: asyncio.Task[Any]) -> str:
    """Where a task waits, innermost first ("sleep (tasks.py:649) < run (x.py:12)"): code locations, no values."""
    places: list[str] = []
    try:
        awaited: Any = task.get_coro()
        for _ in range(1000):  # a chain of awaits ends; this only guards against an odd awaitable
            if awaited is None:
                break
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
            if frame is not None:
                code = frame.f_code
                places.append(f"{code.co_qualname} ({code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno})")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
    except Exception:  # naming the place must never stop the close
        places.append("?")
    return " < ".join(reversed(places[-4:])) or "?"


def _retrieved(task: asyncio.Task[Any]) -> None:
    """Mark what a task ended with as seen: it was cancelled or left on purpose, its end is not news."""
    if not task.cancelled():
        task.exception()


# Young objects counted before the collector runs (Python's default: 700). At 1,000 streams the default ran
# ~30 young collections a second: every word's short-lived objects (frames, held words, pass lists) alive at
# that moment were promoted, and the promotions set off a full collection every few seconds (~130 ms each at
# 1,000 connections, over 200 ms at 2,000). Most of those objects die within a pass or a hold window; counted
# to 10,000 they are gone before the collector looks, and the old generation grows only with what really
# lives (connections, streams).
YOUNG_GC_THRESHOLD = 10_000


def tune_garbage_collection() -> None:
    """Once per process, when its first registry starts: leave what the process loaded out of every full GC,
    and collect the young generation far less often (YOUNG_GC_THRESHOLD).

    Everything loaded so far (Django, the SDKs, the app: ~155,000 objects) lives as long as the process, so it
    is frozen out of every later collection: a full collection took up to 575 ms with 1,500 streams before.
    Rarer collections are safe only because a closed connection leaves no reference cycle behind (the outbox
    drops its cancelled writer; daphne_compat unlinks Daphne's protocol objects; asyncio_compat the transport's
    own read callback): a soak of 10,000 sessions
    stays within a few MB (bench/RESULTS.md).
    """
    if gc.get_freeze_count():
        return  # done already (tests start a registry per event loop)
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, middle, old)


_registries: PerLoop[ProcessRegistry] = PerLoop(lambda: ProcessRegistry(get_store()))


async def get_registry() -> ProcessRegistry:
    """This process's registry, started on first use in the running event loop."""
    registry, new = _registries.get()
    if new:
        logcontext.bind_process(registry.process_id)
        # Its loops serve every socket: they must not inherit the ids of the socket or request that came first.
        contextvars.Context().run(registry.start)
        try:
            await registry.heartbeat()
        except Exception:
            logger.warning("first heartbeat failed; the store may be down", exc_info=True)
    return registry


async def close_registry() -> None:
    """Stop this loop's registry (test teardown, shutdown)."""
    registry = _registries.pop()
    if registry is not None:
        await registry.aclose()
