"""Rolling restart: streams running across two processes while each is replaced in turn (SIGTERM, a new one).

    .venv/bin/python -m bench.rolling            # 50 creators, 200-word scripts at 25 ms a word
    .venv/bin/python -m bench.rolling --quick    # 10 creators, short scripts (seconds); for CI

Two Daphne processes on one Redis behind a stand-in load balancer (it sends a new socket to a process whose
/readyz answered 200 at its last probe, every 0.5 s, as a Kubernetes readiness probe would). Each creator keeps
one socket and generates scripts back to back; on a close it reconnects like client.js (1012 at once, anything
else with backoff) and resumes its stream from the last seq it got. Meanwhile process A is replaced: a new
process is started, A gets SIGTERM and drains; then the same for B. The command prints the streams that ended
without their terminal frame, seq gaps and duplicates (each must be 0, or it exits 1), and the longest pause a
creator saw between two words of a stream. Needs Redis (`--redis-url`, flushed first; default as bench.run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from bench.loadgen import SUBPROTOCOL, USERS_PER_STREAMS, duration_for, fetch_tokens
from bench.run import DEFAULT_REDIS_URL, PASSWORD, PYTHON, ROOT, Server, base_env, parse_mode, redis_flush

SERVICE_RESTART = 1012
PROBE_INTERVAL_S = 0.5
BACKOFF_BASE_S, BACKOFF_CAP_S = 0.5, 5.0  # client.js's full-jitter backoff, with a lower cap for a bench
TERMINAL = frozenset({"stream.completed", "stream.failed", "stream.cancelled"})


# ---------------------------------------------------------------- what the creators saw


@dataclass
class Stream:
    """One script as a creator follows it, across sockets."""

    session_id: str
    last_seq: int = 0
    last_word_at: float = 0.0
    longest_pause_s: float = 0.0
    gaps: int = 0
    duplicates: int = 0
    terminals: list[dict[str, Any]] = field(default_factory=list)
    # (last seq before, seq that came instead) of every gap, for the report
    gap_at: list[tuple[int, int]] = field(default_factory=list)

    def chunk(self, seq: int, now: float) -> None:
        if seq <= self.last_seq:
            self.duplicates += 1
            return
        if seq > self.last_seq + 1:
            self.gaps += seq - self.last_seq - 1
            self.gap_at.append((self.last_seq, seq))
        self.longest_pause_s = max(self.longest_pause_s, now - self.last_word_at)
        self.last_seq, self.last_word_at = seq, now

    def end(self, frame: dict[str, Any], now: float) -> None:
        if frame.get("seq") != self.last_seq and not self.terminals:
            self.gaps += 1
            self.gap_at.append((self.last_seq, frame.get("seq", -1)))
        self.longest_pause_s = max(self.longest_pause_s, now - self.last_word_at)
        self.terminals.append(frame)


@dataclass
class Tally:
    streams: list[Stream] = field(default_factory=list)
    closes: Counter[int] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    reconnect_pauses: list[float] = field(default_factory=list)
    lost_before_start: int = 0
    processes_left: int = 0  # in the cluster's process list once both replacements are done


# ---------------------------------------------------------------- a load balancer, a creator


class Balancer:
    """Which processes take new sockets: those whose /readyz said 200 at the last probe."""

    def __init__(self) -> None:
        self.servers: list[Server] = []
        self.ready: set[int] = set()
        self._turn = 0
        self._probed = asyncio.Condition()

    def candidates(self) -> list[int]:
        ports = [s.port for s in self.servers if s.port in self.ready] or [s.port for s in self.servers]
        self._turn += 1
        return ports[self._turn % len(ports) :] + ports[: self._turn % len(ports)] if ports else []

    async def probe(self) -> None:
        while True:
            for server in tuple(self.servers):
                ready = await asyncio.to_thread(readyz_ok, server.port)
                (self.ready.add if ready else self.ready.discard)(server.port)
            async with self._probed:
                self._probed.notify_all()
            await asyncio.sleep(PROBE_INTERVAL_S)

    async def in_rotation(self, port: int) -> None:
        async with self._probed:
            await self._probed.wait_for(lambda: port in self.ready)


def readyz_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


class Creator:
    """One client: one socket at a time, one stream at a time; reconnects and resumes like client.js."""

    def __init__(self, index: int, token: str, balancer: Balancer, tally: Tally, duration: int) -> None:
        self.index, self.token, self.balancer, self.tally, self.duration = index, token, balancer, tally, duration
        self.connection: ClientConnection | None = None
        self.stream: Stream | None = None
        self.closed_at: float | None = None

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.one_stream()
        if self.connection is not None:
            await self.connection.close()

    async def one_stream(self) -> None:
        """Generate one script and follow it to its terminal frame, across as many sockets as it takes."""
        self.stream = None
        while True:
            connection = await self.connected()
            try:
                await connection.send(self._request())
                await self._follow(connection)
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else 1006
                self.tally.closes[code] += 1
                self.connection, self.closed_at = None, time.monotonic()
                if self.stream is None:  # the generate was answered by the close: the creator never got its id
                    self.tally.lost_before_start += 1
                    return
                if code != SERVICE_RESTART:
                    await asyncio.sleep(random.uniform(0, BACKOFF_BASE_S))
            else:
                return

    async def _follow(self, connection: ClientConnection) -> None:
        """Frames until the stream's terminal frame (or an error answer)."""
        while True:
            frame = orjson.loads(await connection.recv())
            kind, now = frame["type"], time.monotonic()
            if kind == "ping":
                await connection.send(orjson.dumps({"type": "pong", "id": frame["id"]}).decode())
            elif kind == "error":
                self.tally.refused[f"error {frame['code']}"] += 1
                return
            elif kind == "stream.started":
                self.stream = Stream(frame["session_id"], last_word_at=now)
                self.tally.streams.append(self.stream)
            elif kind == "stream.chunk" and self.stream is not None:
                if self.closed_at is not None:
                    self.tally.reconnect_pauses.append(now - self.closed_at)
                    self.closed_at = None
                self.stream.chunk(frame["seq"], now)
            elif kind in TERMINAL and self.stream is not None:
                self.stream.end(frame, now)
                return

    def _request(self) -> str:
        if self.stream is not None:
            frame = {"type": "resume", "session_id": self.stream.session_id, "last_seq": self.stream.last_seq}
        else:
            frame = {
                "type": "generate",
                "topic": f"rolling {self.index}",
                "platform": "tiktok",
                "duration": self.duration,
            }
        return orjson.dumps(frame).decode()

    async def connected(self) -> ClientConnection:
        """The open socket, or a new one through the balancer (refused handshakes try the next process)."""
        attempt = 0
        while self.connection is None:
            for port in self.balancer.candidates():
                try:
                    connection = await connect(
                        f"ws://127.0.0.1:{port}/ws/stream/",
                        subprotocols=[SUBPROTOCOL, f"bearer.{self.token}"],
                        open_timeout=5,
                        proxy=None,
                    )
                    established = orjson.loads(await connection.recv())
                    assert established["type"] == "connection.established", established
                    self.connection = connection
                    break
                except (InvalidHandshake, OSError, TimeoutError, ConnectionClosed) as exc:
                    self.tally.refused[type(exc).__name__] += 1
            else:
                await asyncio.sleep(random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)))
                attempt += 1
        return self.connection


# ---------------------------------------------------------------- the run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Rolling restart under load (bench/README.md).")
    parser.add_argument("--quick", action="store_true", help="10 creators, short scripts; for CI")
    parser.add_argument("-C", "--creators", type=int, help="creators streaming at once (full: 50)")
    parser.add_argument("-W", "--words", type=int, help="words per script (full: 200)")
    parser.add_argument("-D", "--delay-ms", type=int, help="mock pacing, ms per word (full: 25)")
    parser.add_argument("--grace", type=float, default=25, help="SHUTDOWN_GRACE_S of the servers")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--keep", action="store_true", help="keep the work directory (database, server logs)")
    args = parser.parse_args(argv)
    quick = {"creators": 10, "words": 60, "delay_ms": 20}
    full = {"creators": 50, "words": 200, "delay_ms": 25}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def server_env(args: argparse.Namespace, work: Path) -> dict[str, str]:
    """bench.run's product environment (fresh keys, DEBUG off, plain HTTP), on Redis, with the drain's grace."""
    env = base_env(args, work)
    env.update({"LOG_LEVEL": "INFO", "REDIS_URL": args.redis_url, "SHUTDOWN_GRACE_S": str(args.grace)})
    return env


async def replace(old: Server, env: dict[str, str], work: Path, balancer: Balancer, grace: float) -> str:
    """Start the successor and wait until it is in rotation, then SIGTERM `old` and wait for it to exit."""
    new = await asyncio.to_thread(Server(parse_mode("redis"), env, work, 2048).start)
    balancer.servers.append(new)
    async with asyncio.timeout(10):  # a rolling update drains the old process once the new one is in rotation
        await balancer.in_rotation(new.port)
    assert old.process is not None
    started = time.monotonic()
    old.process.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(old.process.wait, grace + 20)
    balancer.servers.remove(old)
    took = time.monotonic() - started
    return f"process :{old.port} got SIGTERM and exited {code} after {took:.1f} s; :{new.port} took over"


def cluster_processes(url: str) -> int:
    import redis

    from streaming.store.redis import PROCESSES_KEY, process_key

    client = redis.Redis.from_url(url)
    try:
        return sum(1 for pid in client.smembers(PROCESSES_KEY) if client.exists(process_key(pid.decode())))
    finally:
        client.close()


async def scenario(args: argparse.Namespace, env: dict[str, str], work: Path) -> tuple[Tally, list[str]]:
    balancer, tally, notes = Balancer(), Tally(), []
    balancer.servers = list(
        await asyncio.gather(*(asyncio.to_thread(Server(parse_mode("redis"), env, work, 2048).start) for _ in range(2)))
    )
    prober = asyncio.create_task(balancer.probe())
    await asyncio.gather(*(balancer.in_rotation(server.port) for server in balancer.servers))
    users = -(-args.creators // USERS_PER_STREAMS)
    tokens = await fetch_tokens(balancer.servers[0].port, users, PASSWORD, "bench")
    stop = asyncio.Event()
    duration = duration_for(args.words)
    creators = [Creator(i, tokens[i // USERS_PER_STREAMS], balancer, tally, duration) for i in range(args.creators)]
    running = [asyncio.create_task(creator.run(stop)) for creator in creators]
    try:
        stream_s = args.words * args.delay_ms / 1000
        await asyncio.sleep(min(2.0, stream_s / 3))  # every creator is mid-stream
        for old in tuple(balancer.servers):
            notes.append(await replace(old, env, work, balancer, args.grace))
            print(f"  {notes[-1]}", flush=True)
        await asyncio.sleep(stream_s)  # streams started on the new processes run too
        stop.set()
        await asyncio.wait_for(asyncio.gather(*running), stream_s * 3 + 30)
        tally.processes_left = cluster_processes(args.redis_url)
    finally:
        for task in (*running, prober):
            task.cancel()
        for server in balancer.servers:
            server.stop()
    return tally, notes


def report(tally: Tally, notes: list[str]) -> tuple[str, int]:
    streams = tally.streams
    without_terminal = sum(1 for s in streams if not s.terminals)
    extra_terminals = sum(max(0, len(s.terminals) - 1) for s in streams)
    gaps, duplicates = sum(s.gaps for s in streams), sum(s.duplicates for s in streams)
    ends = Counter(t["type"] + (f" {t['error']['code']}" if "error" in t else "") for s in streams for t in s.terminals)
    # Completed, or shutting_down for a script longer than the grace; anything else (worker_lost...) is a loss.
    unexpected = sum(n for end, n in ends.items() if end not in {"stream.completed", "stream.failed shutting_down"})
    longest = max((s.longest_pause_s for s in streams), default=0.0)
    pauses = tally.reconnect_pauses
    lines = [
        f"streams: {len(streams)}; ended: {dict(ends)}",
        f"ended without their terminal frame: {without_terminal} (must be 0); extra terminal frames: {extra_terminals}",
        f"seq gaps: {gaps} (must be 0); duplicates: {duplicates} (must be 0)",
        f"longest pause a creator saw in a stream (word to word, or last word to the end): {longest * 1000:.0f} ms"
        + (
            f"; across a reconnect median {statistics.median(pauses) * 1000:.0f} ms, max {max(pauses) * 1000:.0f} ms"
            if pauses
            else ""
        ),
        f"closes seen: {dict(tally.closes)}; refused connects: {dict(tally.refused)}",
        f"generates answered by a close before stream.started (saved, never shown): {tally.lost_before_start}",
        f"other endings than completed or shutting_down: {unexpected} (must be 0)",
        f"processes in the cluster list at the end: {tally.processes_left} (must be 2: the drained ones left it)",
        *notes,
    ]
    lines += [f"gap in {s.session_id}: after seq {a} came {b}" for s in streams for a, b in s.gap_at][:10]
    bad = without_terminal + extra_terminals + gaps + duplicates + unexpected + abs(tally.processes_left - 2)
    return "\n".join(lines), bad


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if problem := redis_flush(args.redis_url):
        print(f"rolling: Redis at {args.redis_url} did not answer ({problem})", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="creatornexus-rolling-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    env = server_env(args, work)
    try:
        users = -(-args.creators // USERS_PER_STREAMS)
        subprocess.run(
            [PYTHON, "-m", "bench.fixtures", "--users", str(users), "--password", PASSWORD],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=300,
        )
        print(
            f"rolling: {args.creators} creators, {args.words} words at {args.delay_ms} ms, grace {args.grace} s",
            flush=True,
        )
        tally, notes = asyncio.run(scenario(args, env, work))
    finally:
        if args.keep:
            print(f"rolling: server logs in {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    text, bad = report(tally, notes)
    print("\n" + text, flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
