"""Load generator: protocol-v1 clients over raw asyncio sockets, one process, measuring a server from outside.

Run by bench/run.py (`python -m bench.loadgen <scenario> --port P --server-pid PID ...`); prints one JSON
object with the scenario's figures on its last stdout line. Raw sockets rather than the `websockets` package:
one process on one core must read tens of thousands of frames a second without becoming the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import math
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

SUBPROTOCOL = "creatornexus.v1"
TERMINAL = frozenset({"stream.completed", "stream.failed", "stream.cancelled"})
CLK_TCK = os.sysconf("SC_CLK_TCK")
SPOKEN_WORDS_PER_MINUTE = 150  # the server's estimate; duration is chosen so the script has about W words
# Connections opened together outside the storm scenario: the storm measures bursts, the others must not.
CONNECT_BATCH = 100
USERS_PER_STREAMS = 4  # the server allows 5 running streams per user; 4 keeps a margin for late cleanup


# ---------------------------------------------------------------- the server process, read from /proc


def _stat(pid: int) -> list[bytes]:
    with open(f"/proc/{pid}/stat", "rb") as fh:
        return fh.read().rsplit(b")", 1)[1].split()


def process_tree(pid: int) -> list[int]:
    """The server process and every process below it (granian serves from a worker process it starts)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(_stat(int(entry))[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = [pid], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        tree += children
        frontier = children
    return tree


def proc_cpu_s(pid: int) -> float:
    """utime + stime of the server's processes (all their threads), in seconds."""
    total = 0
    for member in process_tree(pid):
        try:
            fields = _stat(member)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def proc_rss_kb(pid: int) -> int:
    """Resident memory of the server's processes, in KB."""
    total = 0
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/status", "rb") as fh:
                for line in fh:
                    if line.startswith(b"VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def start_spy(args: argparse.Namespace) -> subprocess.Popen[bytes] | None:
    """py-spy of the server (raw stacks, its worker processes too), from now until stop_spy: the measured
    window only, without the logins and connects before it. It samples from this process's core."""
    if not args.spy_out:
        return None
    spy_bin = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [spy_bin, "record", "--pid", str(args.server_pid), "--subprocesses", "--rate", str(args.spy_rate)]
    spy = subprocess.Popen(
        [*command, "--format", "raw", "--nonblocking", "--output", args.spy_out],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return spy


def stop_spy(spy: subprocess.Popen[bytes]) -> None:
    spy.send_signal(signal.SIGINT)
    spy.wait(timeout=60)


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float] | array, q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---------------------------------------------------------------- one WebSocket client


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return payload
    keystream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(keystream, "little")).to_bytes(n, "little")


def _frame(opcode: int, payload: bytes) -> bytes:
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return header + key + _mask(payload, key)


@dataclass
class Stats:
    """What every client of one scenario adds to."""

    delay_s: float
    lateness: array = field(default_factory=lambda: array("d"))
    # Against the stream's first word instead of its stream.started (bench.provider: an upstream model starts
    # writing before the product announces the stream, so the words before stream.started arrive together).
    lateness_from_first: array = field(default_factory=lambda: array("d"))
    words: int = 0
    frames: int = 0  # stream.chunk frames (fewer than words with multi-word frames)
    gaps: int = 0
    completed: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    start_latency: array = field(default_factory=lambda: array("d"))
    # (time, +1) at each stream's first word and (time, -1) at its last: how many streams had words flowing at
    # once (a server too busy to start streams runs them partly one after another, each on time once started)
    running: list[tuple[float, int]] = field(default_factory=list)
    took: list[float] = field(default_factory=list)  # generate to terminal, per stream

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class Client(asyncio.Protocol):
    """One socket speaking protocol v1; at most one stream at a time."""

    def __init__(self, stats: Stats, handshake: bytes) -> None:
        self.stats = stats
        self.handshake = handshake
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.fragments: list[bytes] = []
        self.established: asyncio.Future[dict[str, Any]] = self.loop.create_future()
        self.closed: asyncio.Future[int | None] = self.loop.create_future()
        self.terminal: asyncio.Future[dict[str, Any]] | None = None
        self.close_code: int | None = None
        self.close_sent = False
        self.sent_generate_at = 0.0
        self.started_at = 0.0
        self.first_at = 0.0
        self.last_chunk_at = 0.0
        self.last_seq = 0

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.write(self.handshake)

    def connection_lost(self, exc: Exception | None) -> None:
        for future in (self.established, self.terminal):
            if future is not None and not future.done():
                future.set_exception(ConnectionError(f"closed ({self.close_code})"))
        if not self.closed.done():
            self.closed.set_result(self.close_code)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[:end]).split(b"\r\n", 1)[0]
            if b" 101 " not in status:
                self._fail_handshake(status.decode("latin-1"))
                return
            self.upgraded = True
            del buf[: end + 4]
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            masked = b1 & 0x80
            if masked:
                head += 4
            if size - pos < head + length:
                break
            payload = bytes(buf[pos + head : pos + head + length])
            if masked:
                payload = _mask(payload, bytes(buf[pos + head - 4 : pos + head]))
            pos += head + length
            self._on_frame(b0 & 0x80, b0 & 0x0F, payload, now)
        del buf[:pos]

    # -- frames
    def _on_frame(self, fin: int, opcode: int, payload: bytes, now: float) -> None:
        if opcode == 0:
            self.fragments.append(payload)
            if fin:
                payload, self.fragments = b"".join(self.fragments), []
                self._on_text(payload, now)
        elif opcode == 1:
            if fin:
                self._on_text(payload, now)
            else:
                self.fragments = [payload]
        elif opcode == 8:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
            if not self.close_sent:
                self._write(_frame(8, payload[:2]))
                self.close_sent = True
            if self.transport is not None:
                self.transport.close()
        elif opcode == 9:
            self._write(_frame(10, payload))

    def _on_chunk(self, seq: int, count: int, now: float) -> None:
        stats = self.stats
        if seq - count != self.last_seq:
            stats.gaps += abs(seq - count - self.last_seq) or 1
        self.last_seq = seq
        stats.words += count
        stats.frames += 1
        base = now - self.started_at
        first_seq = seq - count + 1
        if first_seq == 1:
            self.first_at = now
        self.last_chunk_at = now
        for word_seq in range(first_seq, seq + 1):
            stats.lateness.append(base - word_seq * stats.delay_s)
            stats.lateness_from_first.append(now - self.first_at - (word_seq - 1) * stats.delay_s)

    def _on_text(self, payload: bytes, now: float) -> None:
        msg = orjson.loads(payload)
        kind = msg.get("type")
        stats = self.stats
        if kind == "stream.chunk":
            self._on_chunk(msg["seq"], msg.get("count", 1), now)  # multi-word: `count` words ending at `seq`
        elif kind == "stream.started":
            self.started_at = now
            stats.start_latency.append(now - self.sent_generate_at)
        elif kind in TERMINAL:
            if self.sent_generate_at:
                stats.took.append(now - self.sent_generate_at)
            if self.first_at:
                stats.running.append((self.first_at, 1))
                stats.running.append((self.last_chunk_at, -1))
            if msg.get("seq") != self.last_seq:
                stats.gaps += 1
            if self.terminal is not None and not self.terminal.done():
                self.terminal.set_result(msg)
        elif kind == "connection.established":
            if not self.established.done():
                self.established.set_result(msg)
        elif kind == "ping":
            self.send_json({"type": "pong", "id": msg.get("id")})
        elif kind == "error":
            stats.error(f"error:{msg.get('code')}")
            if self.terminal is not None and not self.terminal.done():
                self.terminal.set_result(msg)

    def _fail_handshake(self, status: str) -> None:
        if not self.established.done():
            self.established.set_exception(ConnectionError(f"handshake refused: {status[:60]}"))
        if self.transport is not None:
            self.transport.close()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    # -- what a scenario does with it
    def send_json(self, frame: dict[str, Any]) -> None:
        self._write(_frame(1, orjson.dumps(frame)))

    def generate(self, topic: str, duration: int, *, batch: bool = False) -> asyncio.Future[dict[str, Any]]:
        self.terminal = self.loop.create_future()
        self.last_seq = 0
        self.started_at = 0.0
        self.first_at = 0.0
        self.sent_generate_at = time.monotonic()
        frame: dict[str, Any] = {
            "type": "generate",
            "request_id": "r1",
            "topic": topic,
            "platform": "tiktok",
            "duration": duration,
        }
        if batch:
            frame["batch"] = True  # multi-word stream.chunk frames (docs/protocol.md)
        self.send_json(frame)
        return self.terminal

    async def close(self, wait_s: float = 3.0) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if not self.close_sent:
            self._write(_frame(8, (1000).to_bytes(2, "big")))
            self.close_sent = True
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), wait_s)
        except TimeoutError:
            self.transport.abort()


@dataclass
class Target:
    """Where and how to connect."""

    port: int
    auth: str  # "subprotocol" or "query"
    tokens: list[str]

    def handshake(self, index: int) -> bytes:
        token = self.tokens[(index // USERS_PER_STREAMS) % len(self.tokens)] if self.tokens else "none"
        path, protocols = "/ws/stream/", SUBPROTOCOL
        if self.auth == "query":
            path += f"?token={token}"
        else:
            protocols += f", bearer.{token}"
        key = base64.b64encode(os.urandom(16)).decode()
        return (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocols}\r\n"
            "User-Agent: creatornexus-bench\r\n\r\n"
        ).encode()


async def open_client(target: Target, index: int, stats: Stats, wait_s: float = 30.0) -> Client:
    loop = asyncio.get_running_loop()
    _, client = await asyncio.wait_for(
        loop.create_connection(lambda: Client(stats, target.handshake(index)), "127.0.0.1", target.port), wait_s
    )
    await asyncio.wait_for(asyncio.shield(client.established), wait_s)
    return client


async def open_many(target: Target, count: int, stats: Stats, batch: int = CONNECT_BATCH) -> list[Client]:
    """Open `count` clients, `batch` at a time; failures are counted, not raised."""
    clients: list[Client] = []
    for first in range(0, count, batch):
        results = await asyncio.gather(
            *(open_client(target, i, stats) for i in range(first, min(count, first + batch))), return_exceptions=True
        )
        for result in results:
            if isinstance(result, Client):
                clients.append(result)
            else:
                stats.error(f"connect:{type(result).__name__}")
    return clients


async def close_all(clients: list[Client]) -> None:
    for first in range(0, len(clients), CONNECT_BATCH * 5):
        await asyncio.gather(*(c.close() for c in clients[first : first + CONNECT_BATCH * 5]))


# ---------------------------------------------------------------- tokens, the way a client gets them


async def _post_json(port: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = orjson.dumps(body)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
        + payload
    )
    raw = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    head, _, content = raw.partition(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"POST {path} answered {head[:40]!r}")
    result: dict[str, Any] = orjson.loads(content)
    return result


async def fetch_tokens(port: int, users: int, password: str, prefix: str) -> list[str]:
    """POST /api/auth/token/ once per user (8 at a time)."""
    gate = asyncio.Semaphore(8)

    async def one(i: int) -> str:
        async with gate:
            body = await _post_json(port, "/api/auth/token/", {"username": f"{prefix}{i}", "password": password})
            return str(body["access"])

    return list(await asyncio.gather(*(one(i) for i in range(users))))


# ---------------------------------------------------------------- scenarios


def duration_for(words: int) -> int:
    return max(5, min(600, round(words * 60 / SPOKEN_WORDS_PER_MINUTE)))


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def peak_running(events: list[tuple[float, int]]) -> int:
    """The most streams that were between their stream.started and their terminal frame at one time."""
    peak = running = 0
    for _at, step in sorted(events):
        running += step
        peak = max(peak, running)
    return peak


async def scenario_stream(args: argparse.Namespace, target: Target) -> dict[str, Any]:
    stats = Stats(delay_s=args.delay_ms / 1000)
    clients = await open_many(target, args.clients, stats)
    await asyncio.sleep(args.settle)  # the server finishes its connection records before the window opens
    duration = duration_for(args.words)
    if spy := start_spy(args):
        await asyncio.sleep(1)  # py-spy attaches (it gives no sign when it has)
    cpu0, own0, t0, wall0 = proc_cpu_s(args.server_pid), own_cpu_s(), time.monotonic(), time.time()
    terminals = []
    per_tick = max(1, math.ceil(len(clients) / max(1, args.spread_ms / 10)))
    for i, client in enumerate(clients):
        terminals.append(client.generate(f"bench topic {i % 97}", duration, batch=args.batch))
        if (i + 1) % per_tick == 0 and args.spread_ms:
            await asyncio.sleep(0.01)
    budget = args.words * stats.delay_s * 4 + args.spread_ms / 1000 + 30
    results = await asyncio.gather(
        *(asyncio.wait_for(asyncio.shield(t), budget) for t in terminals), return_exceptions=True
    )
    t1, cpu1, own1 = time.monotonic(), proc_cpu_s(args.server_pid), own_cpu_s()
    if spy is not None:
        stop_spy(spy)
    for result in results:
        if isinstance(result, dict) and result.get("type") == "stream.completed":
            stats.completed += 1
        else:
            stats.failed += 1
            stats.error(result.get("type", "?") if isinstance(result, dict) else f"stream:{type(result).__name__}")
    await close_all(clients)
    wall, cpu = t1 - t0, cpu1 - cpu0
    late = stats.lateness
    return {
        "clients": args.clients,
        "connected": len(clients),
        "words_per_stream": args.words,
        "delay_ms": args.delay_ms,
        "batch": args.batch,
        "words": stats.words,
        "words_per_frame": round(stats.words / stats.frames, 2) if stats.frames else None,
        "words_per_s": round(stats.words / wall, 1),
        "wall_s": round(wall, 2),
        "late_p50_ms": _ms(percentile(late, 0.5)),
        "late_p99_ms": _ms(percentile(late, 0.99)),
        "late_max_ms": _ms(max(late) if late else math.nan),
        "late_from_first_p99_ms": _ms(percentile(stats.lateness_from_first, 0.99)),
        "start_p99_ms": _ms(percentile(stats.start_latency, 0.99)),
        "peak_running": peak_running(stats.running),
        "took_p50_s": round(percentile(stats.took, 0.5), 2),
        "took_max_s": round(max(stats.took), 2) if stats.took else None,
        "completed": stats.completed,
        "failed": stats.failed + args.clients - len(clients),
        "gaps": stats.gaps,
        "window": [wall0, wall0 + wall],  # wall-clock seconds, for the server's stall probe
        "server_cpu_pct": round(100 * cpu / wall, 1),
        "words_per_cpu_s": round(stats.words / cpu, 1) if cpu else None,
        "loadgen_cpu_pct": round(100 * (own1 - own0) / wall, 1),
        "errors": stats.errors,
    }


async def scenario_storm(args: argparse.Namespace, target: Target) -> dict[str, Any]:
    stats = Stats(delay_s=0)
    loop = asyncio.get_running_loop()

    clients_box: list[Client] = []

    async def keep(i: int, t0: float) -> float:
        client = await open_client(target, i, stats, wait_s=args.storm_timeout)
        clients_box.append(client)
        return loop.time() - t0

    if spy := start_spy(args):
        await asyncio.sleep(1)  # py-spy attaches (it gives no sign when it has)
    cpu0, own0, wall0 = proc_cpu_s(args.server_pid), own_cpu_s(), time.time()
    t0 = loop.time()
    results = await asyncio.gather(*(keep(i, t0) for i in range(args.count)), return_exceptions=True)
    cpu, own = proc_cpu_s(args.server_pid) - cpu0, own_cpu_s() - own0
    if spy is not None:
        stop_spy(spy)
    took = [r for r in results if isinstance(r, float)]
    for result in results:
        if not isinstance(result, float):
            stats.error(f"connect:{type(result).__name__}")
    await close_all(clients_box)
    return {
        "count": args.count,
        "established": len(took),
        "failures": args.count - len(took),
        "all_ms": _ms(max(took)) if len(took) == args.count else None,
        "p50_ms": _ms(percentile(took, 0.5)),
        "p99_ms": _ms(percentile(took, 0.99)),
        "max_ms": _ms(max(took)) if took else None,
        "window": [wall0, wall0 + (loop.time() - t0)],  # wall-clock seconds, for the server's stall probe
        "server_cpu_ms": _ms(cpu),  # from the first connect to the last connection.established
        "loadgen_cpu_ms": _ms(own),
        "errors": stats.errors,
    }


async def scenario_idle(args: argparse.Namespace, target: Target) -> dict[str, Any]:
    stats = Stats(delay_s=0)
    warm = await open_many(target, min(20, args.count), stats)
    await close_all(warm)
    await asyncio.sleep(args.settle)
    rss0 = proc_rss_kb(args.server_pid)
    clients = await open_many(target, args.count, stats)
    await asyncio.sleep(args.settle)
    rss1 = proc_rss_kb(args.server_pid)
    await close_all(clients)
    per = (rss1 - rss0) / max(1, len(clients))
    return {
        "count": args.count,
        "established": len(clients),
        "failures": args.count - len(clients),
        "rss_before_kb": rss0,
        "rss_after_kb": rss1,
        "kb_per_conn": round(per, 1),
        "errors": stats.errors,
    }


async def scenario_soak(args: argparse.Namespace, target: Target) -> dict[str, Any]:
    stats = Stats(delay_s=args.delay_ms / 1000)
    total, workers = args.count, min(args.concurrency, args.count)
    warmup = args.warmup if args.warmup >= 0 else min(2000, total // 5)
    issued = done = 0
    samples: list[tuple[int, int]] = []
    rss_warm: int | None = None
    duration = duration_for(args.words)
    rss_first = proc_rss_kb(args.server_pid)

    async def worker(index: int) -> None:
        nonlocal issued, done, rss_warm
        while issued < total:
            issued += 1
            try:
                client = await open_client(target, index, stats)
                try:
                    result = await asyncio.wait_for(
                        client.generate(f"soak {issued % 31}", duration), args.words * stats.delay_s * 4 + 30
                    )
                finally:
                    await client.close()
                if result.get("type") == "stream.completed":
                    stats.completed += 1
                else:
                    stats.failed += 1
                    stats.error(str(result.get("type")))
            except Exception as exc:
                stats.failed += 1
                stats.error(f"session:{type(exc).__name__}")
            done += 1
            if rss_warm is None and done >= warmup:
                rss_warm = proc_rss_kb(args.server_pid)
                samples.append((done, rss_warm))
            elif done % max(1, total // 10) == 0:
                samples.append((done, proc_rss_kb(args.server_pid)))

    t0 = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(workers)))
    wall = time.monotonic() - t0
    await asyncio.sleep(args.settle)
    rss_end = proc_rss_kb(args.server_pid)
    start = rss_warm if rss_warm is not None else rss_first
    return {
        "sessions": total,
        "concurrency": workers,
        "warmup": warmup,
        "completed": stats.completed,
        "failed": stats.failed,
        "gaps": stats.gaps,
        "rss_first_kb": rss_first,
        "rss_start_kb": start,
        "rss_end_kb": rss_end,
        "growth_mb": round((rss_end - start) / 1024, 2),
        "sessions_per_s": round(total / wall, 1),
        "samples": samples,
        "errors": stats.errors,
    }


SCENARIOS = {"stream": scenario_stream, "storm": scenario_storm, "idle": scenario_idle, "soak": scenario_soak}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--users", type=int, default=0, help="users to log in (0: no auth, the baseline)")
    parser.add_argument("--user-prefix", default="bench")
    parser.add_argument("--password", default="bench-password")
    parser.add_argument("--auth", choices=["subprotocol", "query"], default="subprotocol")
    parser.add_argument("--clients", type=int, default=100, help="stream: concurrent streams (C)")
    parser.add_argument("--words", type=int, default=200, help="stream/soak: words per script (W)")
    parser.add_argument("--delay-ms", type=float, default=25, help="the server's MOCK_STREAM_DELAY_MS (D)")
    parser.add_argument("--spread-ms", type=float, default=1000, help="stream: generates are sent over this long")
    parser.add_argument("--batch", action="store_true", help='stream: ask for multi-word frames ("batch": true)')
    parser.add_argument("--count", type=int, default=100, help="storm/idle: connections; soak: sessions")
    parser.add_argument("--concurrency", type=int, default=50, help="soak: sessions at once")
    parser.add_argument("--warmup", type=int, default=-1, help="soak: sessions before the start RSS")
    parser.add_argument("--storm-timeout", type=float, default=15)
    parser.add_argument("--settle", type=float, default=1.5, help="seconds to let the server settle")
    parser.add_argument("--max-seconds", type=float, default=600, help="hard limit for the whole scenario")
    parser.add_argument("--spy-out", help="stream/storm: py-spy the server over the measured window into this file")
    parser.add_argument("--spy-rate", type=int, default=200, help="py-spy samples per second")
    return parser.parse_args(argv)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    tokens = await fetch_tokens(args.port, args.users, args.password, args.user_prefix) if args.users else []
    target = Target(args.port, args.auth, tokens)
    async with asyncio.timeout(args.max_seconds):
        return await SCENARIOS[args.scenario](args, target)


if __name__ == "__main__":
    parsed = parse_args()
    figures = asyncio.run(main(parsed))
    sys.stdout.write(orjson.dumps(figures).decode() + "\n")
