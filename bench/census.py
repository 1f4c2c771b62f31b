"""What one idle socket costs the server, allocation by allocation: a tracemalloc census (issue 11).

    .venv/bin/python -m bench.census                      # uvicorn and Daphne, the product and the bare consumer
    .venv/bin/python -m bench.census --servers uvicorn --apps product -n 500 --frames 4 --top 25

The RSS figure of `bench.run --scenarios idle` says how much; this says where. Each server runs its documented
command (bench.run's) on `bench.census:application`, the product (Redis mode) or the bare consumer with
tracemalloc on; SIGUSR1 makes it write a snapshot and a count of the objects the collector tracks, by type. The
census takes one after 20 warm-up sockets came and went and one with N idle authenticated sockets open, and
prints the difference divided by N: by traceback (the innermost `--frames` frames) and by type.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ctypes
import gc
import os
import signal
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT_DIR = "BENCH_CENSUS_DIR"
APP = "BENCH_CENSUS_APP"  # "product" or "baseline"
FRAMES = "BENCH_CENSUS_FRAMES"  # frames tracemalloc keeps per allocation


# ---------------------------------------------------------------- in the server process


def _load_app() -> Any:
    """The app named by BENCH_CENSUS_APP; None in the driver (which imports this module too)."""
    if APP not in os.environ:
        return None
    if os.environ[APP] == "baseline":
        from bench.baseline import application as bare

        return bare
    from creatornexus.asgi import application as product

    return product


_inner = _load_app()
_taken = {"count": 0, "installed": False}


def _snapshot() -> None:
    """Write heap-<k>.json (RSS, allocators, then the garbage a full collection found), snapshot-<k>.tm
    (tracemalloc, after that collection: live memory only) and types-<k>.json (gc-tracked objects by type)."""
    directory = Path(os.environ[SNAPSHOT_DIR])
    k = _taken["count"] = _taken["count"] + 1
    heap = _heap()
    heap["garbage_objects"] = gc.collect()
    heap["pymalloc_blocks_collected"] = sys.getallocatedblocks()
    (directory / f"heap-{k}.json").write_bytes(orjson.dumps(heap))
    if tracemalloc.is_tracing():
        tracemalloc.take_snapshot().dump(str(directory / f"snapshot-{k}.tm"))
    types = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    (directory / f"types-{k}.json").write_bytes(orjson.dumps(dict(types)))
    (directory / f"done-{k}").touch()


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
    ] + [("keepcost", ctypes.c_size_t)]


def _heap() -> dict[str, int]:
    """Where RSS goes besides live Python objects: pymalloc's arenas and glibc malloc's in-use and free bytes."""
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _Mallinfo2
    info = libc.mallinfo2()
    with open("/proc/self/status", "rb") as fh:
        rss = next(int(line.split()[1]) for line in fh if line.startswith(b"VmRSS:"))
    return {
        "rss_kb": rss,
        "pymalloc_blocks": sys.getallocatedblocks(),
        "malloc_in_use": info.uordblks,  # glibc: bytes in use (pymalloc's arenas are mmapped, not counted here)
        "malloc_free": info.fordblks,  # glibc: free bytes it holds (fragmentation, or room to grow)
        "malloc_mmapped": info.hblkhd,
        "threads": threading.active_count(),
    }


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The app under census; the first call (in the loop) hands SIGUSR1 to the snapshot."""
    if not _taken["installed"]:
        _taken["installed"] = True
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _snapshot)
        # From here on, not at start: tracing the imports would make the server take a minute to start.
        if frames := int(os.environ.get(FRAMES, "12")):
            tracemalloc.start(frames)
    assert _inner is not None
    await _inner(scope, receive, send)


# ---------------------------------------------------------------- the driver


async def _wait_for(path: Path, timeout_s: float = 60) -> None:
    """Until the server wrote `path` (its signal handler has no other way to answer)."""
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(path):  # noqa: ASYNC240 - a stat of /dev/shm, once per 0.1 s
        if time.monotonic() > deadline:
            raise SystemExit(f"census: the server wrote no {path.name}")
        await asyncio.sleep(0.1)


async def _drive(pid: int, port: int, users: int, count: int, directory: Path) -> None:
    from bench import loadgen

    tokens = await loadgen.fetch_tokens(port, users, "bench-password", "bench") if users else []
    target = loadgen.Target(port, "subprotocol", tokens)
    stats = loadgen.Stats(delay_s=0)
    await loadgen.close_all(await loadgen.open_many(target, 20, stats))
    await asyncio.sleep(1.5)
    os.kill(pid, signal.SIGUSR1)
    await _wait_for(directory / "done-1")
    rss0 = loadgen.proc_rss_kb(pid)
    clients = await loadgen.open_many(target, count, stats)
    await asyncio.sleep(1.5)
    rss1 = loadgen.proc_rss_kb(pid)
    os.kill(pid, signal.SIGUSR1)
    await _wait_for(directory / "done-2")
    await loadgen.close_all(clients)
    if len(clients) != count or stats.errors:
        raise SystemExit(f"census: {len(clients)} of {count} sockets opened; errors {stats.errors}")
    print(f"  RSS {(rss1 - rss0) / count:.1f} KB/socket, read from outside as bench.run does")


def _heap_report(directory: Path, count: int) -> None:
    first = orjson.loads((directory / "heap-1.json").read_bytes())
    second = orjson.loads((directory / "heap-2.json").read_bytes())
    per = {key: (second[key] - first[key]) / count for key in first}
    print(
        f"  per socket: RSS {per['rss_kb']:.1f} KB, pymalloc blocks {per['pymalloc_blocks']:.1f},"
        f" glibc in use {per['malloc_in_use'] / 1024:.1f} KB, glibc free {per['malloc_free'] / 1024:.1f} KB,"
        f" mmapped {per['malloc_mmapped'] / 1024:.1f} KB; threads {first['threads']}->{second['threads']}"
    )
    garbage = second["pymalloc_blocks"] - second["pymalloc_blocks_collected"]
    print(
        f"  uncollected garbage at the second snapshot: {second['garbage_objects'] / count:.1f} objects,"
        f" {garbage / count:.1f} blocks per socket"
    )


def _owner(traceback: tracemalloc.Traceback) -> str:
    """Whose code asked for it: the innermost frame outside the standard library (asyncio, collections...)."""
    for frame in reversed(traceback):
        path = frame.filename
        if "site-packages/" in path:
            return path.split("site-packages/", 1)[1].split("/", 1)[0]
        if path.startswith(str(ROOT)):
            return str(Path(path).relative_to(ROOT))
    return "stdlib"


def _by_owner(diffs: list[tracemalloc.StatisticDiff], count: int) -> None:
    owners: collections.Counter[str] = collections.Counter()
    for diff in diffs:
        owners[_owner(diff.traceback)] += diff.size_diff
    print("  by owner: " + ", ".join(f"{o} {size / count / 1024:.2f}" for o, size in owners.most_common() if size > 0))


def report(directory: Path, count: int, frames: int, top: int) -> None:
    """Print the per-socket difference of the two snapshots, by traceback and by object type."""
    first = tracemalloc.Snapshot.load(str(directory / "snapshot-1.tm"))
    second = tracemalloc.Snapshot.load(str(directory / "snapshot-2.tm"))
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    first, second = first.filter_traces(ignore), second.filter_traces(ignore)
    diffs = second.compare_to(first, "traceback")
    grouped: dict[tuple[str, ...], list[int]] = collections.defaultdict(lambda: [0, 0])
    for diff in diffs:
        # A traceback runs from the oldest frame to the allocating one: the key is the innermost, innermost first.
        key = tuple(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(diff.traceback[-frames:]))
        grouped[key][0] += diff.size_diff
        grouped[key][1] += diff.count_diff
    _by_owner(diffs, count)
    total = sum(size for size, _ in grouped.values())
    print(f"  traced: {total / count / 1024:.2f} KB/socket")
    for key, (size, blocks) in sorted(grouped.items(), key=lambda kv: -kv[1][0])[:top]:
        print(f"  {size / count / 1024:7.3f} KB {blocks / count:6.1f} blocks  {' < '.join(key)}")
    before = orjson.loads((directory / "types-1.json").read_bytes())
    after = orjson.loads((directory / "types-2.json").read_bytes())
    counted = sorted(((after[t] - before.get(t, 0)) / count, t) for t in after)
    print("  gc-tracked objects per socket: " + ", ".join(f"{t} {n:.2f}" for n, t in reversed(counted) if n >= 0.5))


def census(server: str, app: str, args: argparse.Namespace, env: dict[str, str], work: Path) -> None:
    from bench import run
    from bench.loadgen import USERS_PER_STREAMS

    directory = Path(tempfile.mkdtemp(prefix=f"census-{server}-{app}-", dir=work))
    mode = run.parse_mode(f"{server}:{'baseline' if app == 'baseline' else 'redis'}")
    if mode.uses_redis and (problem := run.redis_flush(args.redis_url)):
        raise SystemExit(f"census: redis at {args.redis_url}: {problem}")
    server_env = {
        **run.mode_env(mode, env, args.redis_url),
        APP: app,
        SNAPSHOT_DIR: str(directory),
        FRAMES: str(args.frames_stored),
    }
    port = run.free_port()
    command = [*run.pinning()[0], *run.server_command(server, "bench.census:application", port, 2048)]
    log = (directory / "server.log").open("ab")
    process = run.subprocess.Popen(command, cwd=run.ROOT, env=server_env, stdout=log, stderr=run.subprocess.STDOUT)
    try:
        _wait_healthy(process, port)
        users = 0 if app == "baseline" else -(-args.count // USERS_PER_STREAMS)
        print(f"{server}:{app}, {args.count} idle sockets")
        asyncio.run(_drive(process.pid, port, users, args.count, directory))
        _heap_report(directory, args.count)
        if args.frames_stored:
            report(directory, args.count, args.frames, args.top)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except run.subprocess.TimeoutExpired:
            process.kill()  # as bench.run's Server.stop: a server left behind would stay in Redis's process list
            process.wait(timeout=10)


def _wait_healthy(process: Any, port: int) -> None:
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("census: the server exited at start")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("census: the server did not answer /healthz")


def main(argv: list[str] | None = None) -> None:
    from bench import run

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default="uvicorn,daphne")
    parser.add_argument("--apps", default="product,baseline")
    parser.add_argument("-n", "--count", type=int, default=500)
    parser.add_argument("--frames", type=int, default=3, help="innermost frames a group is told apart by")
    parser.add_argument("--frames-stored", type=int, default=12, help="frames tracemalloc keeps per allocation")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", run.DEFAULT_REDIS_URL))
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="creatornexus-census-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    env = run.base_env(argparse.Namespace(delay_ms=25), work)
    users = -(-args.count // 4) + 10
    run.subprocess.run(
        [run.PYTHON, "-m", "bench.fixtures", "--users", str(users)], cwd=run.ROOT, env=env, check=True, timeout=300
    )
    for server in args.servers.split(","):
        for app in args.apps.split(","):
            census(server, app, args, env, work)
    run.shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
