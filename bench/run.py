"""The benchmark command: start the servers, run every scenario in every mode, print one table.

    .venv/bin/python -m bench.run            # the full run (a few minutes on 2 cores)
    .venv/bin/python -m bench.run --quick    # a smoke run in seconds; exits 1 on any gap or failure
    .venv/bin/python -m bench.run --modes uvicorn:baseline,uvicorn:redis,uvicorn:redis+batch \
        --scenarios stream --ramp 500,1000,2000 --repeat 3   # streams per core, medians of 3

A mode is `server:app[+batch]`: server daphne, uvicorn or granian; app baseline (the bare Channels consumer),
embedded or redis (the product); +batch asks for multi-word frames. Every figure is compared with the bare
consumer under the same server in the same run.

See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SERVERS = ("daphne", "uvicorn", "granian")
MODES = tuple(
    f"{server}:{app}"
    for server in SERVERS
    for app in ("baseline", "redis", "redis+batch", *(("embedded",) if server == "daphne" else ()))
)
# Earlier names, still understood.
ALIASES = {"baseline": "daphne:baseline", "embedded": "daphne:embedded", "redis": "daphne:redis"}
SCENARIOS = ("idle", "storm", "stream", "soak")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
PASSWORD = "bench-password"
USERS_PER_STREAMS = 4  # bench.loadgen gives each user 4 clients; the server allows 5 running streams per user
START_TIMEOUT_S = 30


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# `--nice N`: the server and the load generator run at nice -N (as root), so other work on a shared machine
# takes less of their cores. Set from main(); 0 leaves priorities alone.
PRIORITY = {"boost": 0}


def pinning() -> tuple[list[str], list[str]]:
    """taskset (and nice) prefixes: the server on core 0, the load generator on core 1 (2+ cores)."""
    nice = ["nice", "-n", str(-PRIORITY["boost"])] if PRIORITY["boost"] else []
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return [*nice, "taskset", "-c", "0"], [*nice, "taskset", "-c", "1"]
    return nice, nice


@dataclass(frozen=True)
class Mode:
    """What one column of the table runs: a server, an app, and whether clients ask for multi-word frames."""

    server: str
    app: str  # baseline (bare consumer), embedded, redis
    batch: bool = False

    @property
    def name(self) -> str:
        return f"{self.server}:{self.app}{'+batch' if self.batch else ''}"

    @property
    def baseline(self) -> str:
        return f"{self.server}:baseline"

    @property
    def uses_redis(self) -> bool:
        return self.app == "redis"


def parse_mode(text: str) -> Mode:
    """`server:app[+batch]`; `uvicorn-redis` and the bare `baseline`/`embedded`/`redis` name Daphne's."""
    text = ALIASES.get(text, text)
    if ":" not in text and "-" in text:
        text = text.replace("-", ":", 1)
    server, _, app = text.partition(":")
    app, batch = app.removesuffix("+batch"), app.endswith("+batch")
    if server not in SERVERS or app not in ("baseline", "embedded", "redis") or (batch and app == "baseline"):
        raise SystemExit(f"bench: unknown mode {text!r} (server:app[+batch], e.g. uvicorn:redis+batch)")
    return Mode(server, app, batch)


def server_command(server: str, app: str, port: int, backlog: int) -> list[str]:
    """The documented command of each server (docs/deploy.md), on the bench's port and backlog."""
    if server == "uvicorn":
        # Per-message deflate off: it costs CPU and memory on one-word frames.
        return [
            *(PYTHON, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)),
            *("--backlog", str(backlog), "--ws", "websockets-sansio", "--ws-per-message-deflate", "false"),
            *("--lifespan", "off", "--no-access-log", "--log-level", "warning"),
        ]
    if server == "granian":
        return [
            *(PYTHON, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port)),
            *("--backlog", str(max(128, backlog)), "--workers", "1", "--log-level", "warning", app),
        ]
    return [PYTHON, "-m", "daphne", "-e", f"tcp:port={port}:interface=127.0.0.1:backlog={backlog}", app]


@dataclass
class Server:
    """One server process on a free port, pinned to the server core."""

    mode: Mode
    env: dict[str, str]
    log_dir: Path
    backlog: int
    stalls: bool = False
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def stalls_file(self) -> Path:
        return self.log_dir / f"stalls-{self.port}.json"

    def start(self) -> Server:
        if self.mode.app == "baseline":
            app = "bench.baseline:application"
        else:
            app = "bench.stall_probe:application" if self.stalls else "creatornexus.asgi:application"
        log = (self.log_dir / f"server-{self.mode.name.replace(':', '-')}-{self.port}.log").open("ab")
        env = {**self.env, "BENCH_STALLS_FILE": str(self.stalls_file)} if self.stalls else self.env
        self.process = subprocess.Popen(
            [*pinning()[0], *server_command(self.mode.server, app, self.port, self.backlog)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.mode.name} server exited; see {log.name}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.mode.name} server did not answer /healthz within {START_TIMEOUT_S}s")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def stall_window(path: Path, t0: float, t1: float) -> dict[str, Any] | None:
    """The stall probe's figures (bench/stall_probe.py) over wall-clock seconds t0..t1 of a stopped server."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    rows = [row for key, row in data["seconds"].items() if int(t0) <= int(key) <= int(t1)]
    if not rows:
        return None
    return {
        "max_lag_ms": round(max(row["max_lag_ms"] for row in rows), 1),
        "lags_over_ms": {str(b): sum(row["lags"][i] for row in rows) for i, b in enumerate(data["bounds_ms"])},
        "gc_count": [sum(row["gc_count"][g] for row in rows) for g in range(3)],
        "gc_max_ms": [round(max(row["gc_max_ms"][g] for row in rows), 1) for g in range(3)],
        "gc_cpu_max_ms": [round(max(row["gc_cpu_max_ms"][g] for row in rows), 1) for g in range(3)],
    }


def run_loadgen(server: Server, scenario: str, options: list[str], users: int, timeout_s: float) -> dict[str, Any]:
    command = [
        *pinning()[1],
        PYTHON,
        "-m",
        "bench.loadgen",
        scenario,
        "--port",
        str(server.port),
        "--server-pid",
        str(server.pid),
        "--users",
        str(users if server.mode.app != "baseline" else 0),
        "--password",
        PASSWORD,
        "--max-seconds",
        str(timeout_s),
        *options,
        *(["--batch"] if server.mode.batch and scenario == "stream" else []),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=timeout_s + 60, check=False)
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-5:]
        return {"crashed": " | ".join(tail) or f"exit {done.returncode}"}
    result: dict[str, Any] = orjson.loads(done.stdout.strip().splitlines()[-1])
    result["loadavg"] = round(os.getloadavg()[0], 1)  # this machine is shared: say how busy it was
    return result


def median_result(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Repeats of one scenario as one result: the median of every figure, the worst of every failure count."""
    good = [r for r in results if "crashed" not in r]
    if not good:
        return results[-1]
    merged: dict[str, Any] = dict(good[len(good) // 2])
    for key, value in good[0].items():
        values = [r.get(key) for r in good]
        if key in ("failed", "gaps", "failures") and all(isinstance(v, int) for v in values):
            merged[key] = max(values)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            numbers = [v for v in values if isinstance(v, int | float) and not math.isnan(v)]
            if numbers:
                merged[key] = statistics.median(numbers)
    merged["repeats"] = len(results)
    if len(good) > 1:
        for key in ("late_p99_ms", "p99_ms"):  # stream lateness, storm handshakes
            if key in good[0]:
                merged["p99_runs"] = [r[key] for r in good]
    return merged


# ---------------------------------------------------------------- configuration


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="CreatorNexus benchmark (bench/README.md).")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (seconds); for CI")
    parser.add_argument("-C", "--clients", type=int, help="stream: concurrent streams (full: 200)")
    parser.add_argument("-W", "--words", type=int, help="stream: words per script (full: 200)")
    parser.add_argument("-D", "--delay-ms", type=int, help="mock pacing, ms per word (full: 25)")
    parser.add_argument("-N", "--storm", type=int, help="storm: connections at once (full: 1000)")
    parser.add_argument("--idle", type=int, help="idle: connections held (full: 1000)")
    parser.add_argument("-S", "--soak", type=int, help="soak: sessions back to back (full: 10000)")
    parser.add_argument("--soak-concurrency", type=int, help="soak: sessions at once (full: 100)")
    parser.add_argument("--soak-words", type=int, help="soak: words per session (full: 12)")
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help="comma list of server:app[+batch] (servers daphne, uvicorn, granian; apps baseline, embedded, redis)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="run each scenario this often; medians are shown")
    parser.add_argument("--stalls", action="store_true", help="probe the product's event loop for stalls and GC")
    parser.add_argument("--nice", type=int, default=0, help="run server and load generator at nice -N (root)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma list of " + ", ".join(SCENARIOS))
    parser.add_argument("--ramp", default="", help="stream only, e.g. 100,200,400,800: stop a mode past p99 100 ms")
    parser.add_argument("--auth", choices=["subprotocol", "query"], default="subprotocol")
    parser.add_argument("--backlog", type=int, default=2048, help="listen backlog of the servers (Twisted: 50)")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--profile", type=Path, help="record py-spy profiles of the stream and storm scenarios here")
    parser.add_argument("--spread-ms", type=int, help="stream: generates are sent over this long (full: 1000)")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (database, server logs)")
    parser.add_argument(
        "--work-root",
        default="/dev/shm" if Path("/dev/shm").is_dir() else None,
        help="where the throwaway SQLite database and logs go (default tmpfs: disk fsyncs are not the server)",
    )
    args = parser.parse_args(argv)
    sizes = (
        {
            "clients": 10,
            "words": 20,
            "delay_ms": 10,
            "storm": 20,
            "idle": 20,
            "soak": 40,
            "soak_concurrency": 10,
            "soak_words": 12,
        }
        if args.quick
        else {
            "clients": 200,
            "words": 200,
            "delay_ms": 25,
            "storm": 1000,
            "idle": 1000,
            "soak": 10000,
            "soak_concurrency": 100,
            "soak_words": 12,
        }
    )
    for name, value in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def base_env(args: argparse.Namespace, work: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in {"REDIS_URL", "OPENAI_API_KEY"}}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{work / 'bench.sqlite3'}",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "JWT_SECRET": secrets.token_urlsafe(50),
            "DJANGO_SECURE_SSL_REDIRECT": "0",  # the load generator speaks plain HTTP
            "AUTH_RATE_LIMIT_PER_ADDRESS": "0",  # every bench user logs in from 127.0.0.1
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "MOCK_STREAM_DELAY_MS": str(args.delay_ms),
            "JWT_ACCESS_TTL_S": "14400",
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),  # INFO: every stream and socket logged
            "PYTHONUNBUFFERED": "1",
            "MALLOC_ARENA_MAX": "1",  # part of every server's command in docs/deploy.md (the bare consumer's too)
        }
    )
    return env


def mode_env(mode: Mode, env: dict[str, str], redis_url: str) -> dict[str, str]:
    if mode.app == "baseline":
        return {k: v for k, v in env.items() if k != "DJANGO_SETTINGS_MODULE"}
    if mode.uses_redis:
        return {**env, "REDIS_URL": redis_url}
    return env


def redis_flush(url: str) -> str | None:
    """Flush the bench database; the reason when Redis does not answer."""
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.flushdb()
        client.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def scenario_options(args: argparse.Namespace, scenario: str, clients: int | None = None) -> list[str]:
    common = ["--auth", args.auth, "--delay-ms", str(args.delay_ms), "--settle", "0.3" if args.quick else "1.5"]
    if scenario == "stream":
        spread = str(args.spread_ms if args.spread_ms is not None else (100 if args.quick else 1000))
        return [*common, "--clients", str(clients or args.clients), "--words", str(args.words), "--spread-ms", spread]
    if scenario == "storm":
        return [*common, "--count", str(args.storm)]
    if scenario == "idle":
        return [*common, "--count", str(args.idle)]
    return [
        *common,
        "--count",
        str(args.soak),
        "--concurrency",
        str(args.soak_concurrency),
        "--words",
        str(args.soak_words),
    ]


def users_needed(args: argparse.Namespace) -> int:
    ramp = [int(c) for c in args.ramp.split(",") if c.strip()]
    most = max([args.clients, args.storm, args.idle, args.soak_concurrency, *ramp])
    return math.ceil(most / USERS_PER_STREAMS)


# ---------------------------------------------------------------- figures, targets, table


def figures(scenario: str, r: dict[str, Any]) -> str:
    text = _figures(scenario, r)
    return f"{text}; load {r['loadavg']}" if "loadavg" in r else text


def _stalls(r: dict[str, Any]) -> str:
    """The stall probe's figures over the measured window (--stalls), if any."""
    if not (stalls := r.get("stalls")):
        return ""
    return (
        f"; loop lag max {stalls['max_lag_ms']} ms, probes >=20 ms {stalls['lags_over_ms']['20']}, "
        f"gc by generation: {stalls['gc_count']} runs, max {stalls['gc_max_ms']} ms "
        f"({stalls['gc_cpu_max_ms']} ms CPU)"
    )


def _figures(scenario: str, r: dict[str, Any]) -> str:
    if "crashed" in r:
        return f"load generator failed: {r['crashed']}"
    if scenario == "stream":
        per_frame = f", {r['words_per_frame']} words/frame" if r.get("words_per_frame", 1) != 1 else ""
        text = (
            f"C={r['clients']:g} W={r['words_per_stream']:g} D={r['delay_ms']:g}: {r['words_per_s']:.0f} words/s"
            f"{per_frame}; late p50 {r['late_p50_ms']:.1f} p99 {r['late_p99_ms']:.1f} max {r['late_max_ms']:.1f} ms; "
            f"{r['completed']:g} done {r['failed']} failed {r['gaps']} gaps; cpu {r['server_cpu_pct']:.1f}%, "
            f"{r['words_per_cpu_s']:.0f} words/cpu-s (loadgen cpu {r['loadgen_cpu_pct']:.1f}%)"
        )
        if r.get("peak_running") is not None:
            # Streams start late when the server is busy: only those running together count as concurrent.
            text += f"; {r['peak_running']} at once at the peak, start p99 {r['start_p99_ms']:.0f} ms"
        if r.get("words_per_cpu_s") and r["delay_ms"]:
            # Streams one core would carry at 100 % CPU at this cost per word: an upper bound that a busy,
            # shared machine does not move the way it moves lateness.
            text += f"; CPU bound ~{r['words_per_cpu_s'] * r['delay_ms'] / 1000:.0f} streams/core"
        if "p99_runs" in r:
            text += f"; p99 of runs {r['p99_runs']}"
        return text + _stalls(r)
    if scenario == "storm":
        return (
            f"N={r['count']}: all in {r['all_ms']} ms; p50 {r['p50_ms']} p99 {r['p99_ms']} ms; {r['failures']} failed; "
            f"cpu server {r.get('server_cpu_ms')} loadgen {r.get('loadgen_cpu_ms')} ms"
            + (f"; p99 of runs {r['p99_runs']}" if "p99_runs" in r else "")
            + _stalls(r)
        )
    if scenario == "idle":
        return f"N={r['count']}: {r['kb_per_conn']} KB/conn (RSS {r['rss_before_kb']}->{r['rss_after_kb']} KB)"
    return (
        f"S={r['sessions']} x{r['concurrency']}: RSS {r['rss_start_kb'] // 1024}->{r['rss_end_kb'] // 1024} MB "
        f"(+{r['growth_mb']} MB after {r['warmup']}); {r['failed']} failed {r['gaps']} gaps; "
        f"{r['sessions_per_s']} sessions/s"
    )


KEY_FIGURE = {  # scenario -> (figure, lower is better)
    "stream": ("words_per_cpu_s", False),
    "storm": ("p99_ms", True),
    "idle": ("kb_per_conn", True),
    "soak": ("growth_mb", True),
}


def ratio(scenario: str, r: dict[str, Any], base: dict[str, Any] | None) -> str:
    """The figure against the bare consumer under the same server, in the same run."""
    if base is None or "crashed" in r or "crashed" in base:
        return "-"
    parts = []
    if scenario == "stream":
        parts.append(_x("p99", r["late_p99_ms"], base["late_p99_ms"]))
        parts.append(
            _x(
                "cpu/word",
                1 / r["words_per_cpu_s"] if r["words_per_cpu_s"] else None,
                1 / base["words_per_cpu_s"] if base["words_per_cpu_s"] else None,
            )
        )
    else:
        key, _ = KEY_FIGURE[scenario]
        parts.append(_x(key.replace("_", " "), r.get(key), base.get(key)))
    return "; ".join(parts)


def _x(label: str, value: float | None, base: float | None) -> str:
    if value is None or base is None or base == 0 or math.isnan(value) or math.isnan(base):
        return f"{label} -"
    return f"{label} {value / base:.2f}x"


def concurrent(r: dict[str, Any]) -> bool:
    """The streams really ran together: at the peak at least 95 % of them between start and end (not started
    one after another by a server too busy to start them)."""
    peak = r.get("peak_running")
    return peak is None or peak >= 0.95 * r["clients"]


def on_time(r: dict[str, Any]) -> bool:
    """A stream step that held: p99 < 100 ms, 0 gaps, 0 failures, and the streams really ran together."""
    return "crashed" not in r and r["late_p99_ms"] < 100 and not r["gaps"] and not r["failed"] and concurrent(r)


def target(scenario: str, mode: Mode, r: dict[str, Any]) -> str:
    if mode.app == "baseline" or "crashed" in r:
        return "-"
    if scenario == "stream":
        ok = on_time(r)
        full = r["clients"] >= 2000 and r["words_per_stream"] == 200 and r["delay_ms"] == 25
        text = f"2000 streams p99<100ms 0 gaps: p99<100ms at C={r['clients']} {'yes' if ok else 'no'}"
        return f"{text} -> {'met' if ok and full else 'not met'}"
    if scenario == "storm":
        ok = r["failures"] == 0 and r["all_ms"] is not None and r["all_ms"] < 1000 and r["p99_ms"] < 600
        size = "" if r["count"] >= 1000 else f" (N={r['count']}<1000)"
        return f"1000 in <1s, p99<600ms{size}: {'met' if ok and not size else 'not met'}"
    if scenario == "idle":
        return f"<20 KB/conn: {'met' if r['kb_per_conn'] < 20 else 'not met'}"
    ok = r["growth_mb"] < 5 and r["failed"] == 0 and r["gaps"] == 0
    size = "" if r["sessions"] >= 10000 else f" (S={r['sessions']}<10000)"
    return f"10000 sessions +<5MB 0 fail 0 gaps{size}: {'met' if ok and not size else 'not met'}"


def cpu_rows(results: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    """Redis mode against embedded, CPU per word, for every server (and framing) that ran both."""
    rows = []
    for (scenario, name), red in sorted(results.items()):
        if scenario != "stream" or ":redis" not in name:
            continue
        emb = results.get(("stream", name.replace(":redis", ":embedded")))
        if not emb or "crashed" in emb or "crashed" in red or not red["words_per_cpu_s"]:
            continue
        extra = emb["words_per_cpu_s"] / red["words_per_cpu_s"] - 1
        verdict = "met" if extra <= 0.25 else "not met"
        rows.append(f"{name} vs embedded CPU per word: {100 * extra:+.0f}% (target <= +25%): {verdict}")
    return rows


def render(rows: list[tuple[str, str, str, str, str]], notes: list[str]) -> tuple[str, str]:
    header = ("scenario", "mode", "figures", "vs baseline", "target")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    text = "\n".join(
        [line.format(*header), line.format(*("-" * w for w in widths))] + [line.format(*row) for row in rows] + notes
    )
    md = "\n".join(
        ["| " + " | ".join(header) + " |", "|" + "---|" * 5]
        + ["| " + " | ".join(row) + " |" for row in rows]
        + [""]
        + [f"- {n}" for n in notes]
    )
    return text, md


def failures_of(scenario: str, r: dict[str, Any]) -> int:
    if "crashed" in r:
        return 1
    if scenario in ("stream", "soak"):
        return int(r["failed"]) + int(r["gaps"])
    return int(r["failures"])


# ---------------------------------------------------------------- the run


class Bench:
    """One run: a work directory, the users, and a fresh server per mode (and per scenario unless --quick)."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.env = base_env(args, work)
        self.users = users_needed(args)

    def prepare(self) -> None:
        subprocess.run(
            [PYTHON, "-m", "bench.fixtures", "--users", str(self.users), "--password", PASSWORD],
            cwd=ROOT,
            env=self.env,
            check=True,
            timeout=300,
        )

    def server(self, mode: Mode) -> Server:
        if mode.uses_redis:
            problem = redis_flush(self.args.redis_url)
            if problem:
                raise RuntimeError(f"redis at {self.args.redis_url}: {problem}")
        env = mode_env(mode, self.env, self.args.redis_url)
        stalls = self.args.stalls and mode.app != "baseline"
        return Server(mode, env, self.work, self.args.backlog, stalls=stalls).start()

    def scenario(self, server: Server, scenario: str, clients: int | None = None) -> dict[str, Any]:
        budget = 120 if self.args.quick else 900
        options = scenario_options(self.args, scenario, clients) + self._profile(server, scenario)
        return run_loadgen(server, scenario, options, self.users, budget)

    def fresh(self, mode: Mode, scenario: str, clients: int | None = None) -> dict[str, Any]:
        """One scenario on a server of its own, repeated --repeat times: the medians."""
        runs = []
        for _ in range(max(1, self.args.repeat)):
            server = self.server(mode)
            try:
                result = self.scenario(server, scenario, clients)
            finally:
                server.stop()
            if server.stalls and "window" in result:
                result["stalls"] = stall_window(server.stalls_file, *result["window"])
            runs.append(result)
        return median_result(runs) if len(runs) > 1 else runs[0]

    def _profile(self, server: Server, scenario: str) -> list[str]:
        """The load generator's options to py-spy the server over the scenario's measured window."""
        if self.args.profile is None or scenario not in ("stream", "storm") or server.mode.app == "baseline":
            return []
        self.args.profile.mkdir(parents=True, exist_ok=True)
        out = self.args.profile / f"{scenario}-{server.mode.name.replace(':', '-')}-{server.port}.txt"
        rate = "1000" if scenario == "storm" else "200"  # a storm lasts under a second
        return ["--spy-out", str(out), "--spy-rate", rate]

    def run_mode(self, mode: Mode, scenarios: list[str]) -> dict[str, dict[str, Any]]:
        results: dict[str, dict[str, Any]] = {}
        if mode.batch:
            scenarios = [s for s in scenarios if s == "stream"]  # framing changes nothing else
        shared = self.server(mode) if self.args.quick else None
        try:
            for scenario in scenarios:
                if shared is not None:
                    results[scenario] = self.scenario(shared, scenario)
                else:
                    results[scenario] = self.fresh(mode, scenario)
                print(f"  {mode.name:20} {scenario:7} {figures(scenario, results[scenario])}", flush=True)
        finally:
            if shared is not None:
                shared.stop()
        return results

    def ramp(self, modes: list[Mode], steps: list[int]) -> tuple[list[str], dict[str, int]]:
        """Each mode at growing stream counts until p99 >= 100 ms, a gap or a failure: the most that held."""
        lines: list[str] = []
        held: dict[str, int] = {}
        for mode in modes:
            crossed = None
            for clients in steps:
                r = self.fresh(mode, "stream", clients)
                line = f"ramp {mode.name:20} {figures('stream', r)}"
                print("  " + line, flush=True)
                lines.append(line)
                if not on_time(r):
                    crossed = clients
                    break
                held[mode.name] = clients
            most = held.get(mode.name, 0)
            verdict = f"crossed at C={crossed}" if crossed else f"held up to the last step, C={steps[-1]}"
            lines.append(f"ramp {mode.name}: most streams with p99 < 100 ms, 0 gaps, 0 failures: {most} ({verdict})")
        return lines, held


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    pinned = "server on core 0, load generator on core 1" if "taskset" in pinning()[0] else "not pinned"
    if PRIORITY["boost"]:
        pinned += f", both at nice -{PRIORITY['boost']}"
    return f"{os.cpu_count()} cores, {model}; {pinned}; Python {sys.version.split()[0]}"


def reachable_modes(args: argparse.Namespace, modes: list[Mode], notes: list[str]) -> list[Mode]:
    """Redis modes need Redis: skipped (with a note) when it does not answer, except under CI, which fails."""
    redis_modes = [m for m in modes if m.uses_redis]
    if redis_modes and (problem := redis_flush(args.redis_url)):
        if os.environ.get("CI"):
            raise RuntimeError(f"Redis at {args.redis_url} did not answer ({problem}); CI never skips Redis")
        notes.append(f"redis modes skipped: {args.redis_url} did not answer ({problem})")
        print(f"bench: {notes[-1]}", flush=True)
        return [m for m in modes if m not in redis_modes]
    return modes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    PRIORITY["boost"] = args.nice
    modes = [parse_mode(m) for m in args.modes.split(",") if m]
    scenarios = [s for s in args.scenarios.split(",") if s]
    work = Path(tempfile.mkdtemp(prefix="creatornexus-bench-", dir=args.work_root))
    bench = Bench(args, work)
    rows: list[tuple[str, str, str, str, str]] = []
    notes = [
        f"machine: {machine()}; load before the run {os.getloadavg()[0]:.1f}",
        f"command: {' '.join([Path(PYTHON).name, '-m', 'bench.run', *(argv or sys.argv[1:])])}",
    ]
    results: dict[tuple[str, str], dict[str, Any]] = {}
    bad = 0
    started = time.monotonic()
    try:
        bench.prepare()
        print(f"bench: {machine()}; work dir {work}", flush=True)
        modes = reachable_modes(args, modes, notes)
        if args.ramp:
            steps = [int(c) for c in args.ramp.split(",") if c.strip()]
            lines, _held = bench.ramp(modes, steps)
            notes += lines
        else:
            for mode in modes:
                for scenario, r in bench.run_mode(mode, scenarios).items():
                    results[(scenario, mode.name)] = r
                    bad += failures_of(scenario, r)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    for scenario in scenarios:
        for mode in modes:
            r = results.get((scenario, mode.name))
            if r is not None:
                rows.append(
                    (
                        scenario,
                        mode.name,
                        figures(scenario, r),
                        ratio(scenario, r, results.get((scenario, mode.baseline))),
                        target(scenario, mode, r),
                    )
                )
    notes[:0] = cpu_rows(results)
    took = time.monotonic() - started
    notes.append(f"took {took:.0f} s; gaps + failures: {bad}; load after {os.getloadavg()[0]:.1f}")
    text, md = render(rows, notes) if rows else ("\n".join(notes), "\n".join(f"- {n}" for n in notes))
    print("\n" + text, flush=True)
    if args.markdown:
        args.markdown.write_text(md + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
