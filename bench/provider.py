"""The provider bench: the stream scenario through the OpenAI provider, next to the mock's, in one run.

    .venv/bin/python -m bench.provider                       # C=200 W=200 D=25, Daphne, Redis mode
    .venv/bin/python -m bench.provider --ramp 200,400,600,800,1000
    .venv/bin/python -m bench.provider --quick               # seconds; exit 1 on any gap or failure
    .venv/bin/python -m bench.provider --profile /tmp/prof   # py-spy of the server, summed by package

The product (pinned to core 0) serves the load generator's streams twice: with its mock provider (a word every
D ms) and with the OpenAI provider against `bench.upstream`, an OpenAI-compatible server that streams one word
per chunk every D ms per request on the other core (with the load generator). Words per server CPU-second and
streams per core (words per CPU-second / words a second of one stream: what one core carries when CPU is all
that bounds it) are printed for both, and the OpenAI path's CPU per word as a ratio to the mock's.
bench/README.md explains the other figures. Lateness is against the stream's schedule (stream.started + seq x
D); through the provider it includes the one chunk a word waits for its end (the next word's first character).
The upstream starts writing when the request comes, before the product has announced the stream, so under a
burst of starts the first words wait in the socket and lateness against stream.started reads low or negative:
"p99 from the first word" (arrival - first word's arrival - (seq - 1) x D) shows the delays of a running
stream, "start p99" the time from `generate` to stream.started.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.run import (
    PASSWORD,
    PYTHON,
    ROOT,
    Server,
    base_env,
    machine,
    mode_env,
    on_time,
    parse_mode,
    pinning,
    redis_flush,
    run_loadgen,
)

UPSTREAM_START_S = 15
# openai-httpx: the OpenAI provider over the SDK's own HTTP transport (OPENAI_HTTP_TRANSPORT=httpx, as behind
# a proxy) instead of the lean one.
PROVIDERS = ("mock", "openai", "openai-httpx")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="C=10 W=20 D=10: a smoke run")
    parser.add_argument("-C", "--clients", type=int, help="concurrent streams (default 200)")
    parser.add_argument("-W", "--words", type=int, help="words per script (default 200)")
    parser.add_argument("-D", "--delay-ms", type=int, help="ms per word, mock and upstream alike (default 25)")
    parser.add_argument("--ramp", default="", help="e.g. 200,400,800: every step for both providers")
    parser.add_argument(
        "--spread-ms", type=int, help="generates are sent over this long (default 1000, as bench.run; 100 quick)"
    )
    parser.add_argument("--providers", default="mock,openai", help="comma list of " + ", ".join(PROVIDERS))
    parser.add_argument("--server", choices=["daphne", "uvicorn"], default="daphne")
    parser.add_argument("--batch", action="store_true", help='clients ask for multi-word frames ("batch": true)')
    parser.add_argument("--store", choices=["redis", "embedded"], default="redis")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument(
        "--profile", type=Path, help="py-spy of the server over each measured window (no logins) into this folder"
    )
    parser.add_argument("--tls", action="store_true", help="the upstream speaks HTTPS (a self-signed certificate)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (database, logs)")
    args = parser.parse_args(argv)
    quick = {"clients": 10, "words": 20, "delay_ms": 10}
    full = {"clients": 200, "words": 200, "delay_ms": 25}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for localhost (openssl, as Debian has it)."""
    cert, key = folder / "upstream-cert.pem", folder / "upstream-key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=DNS:localhost"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


class Upstream:
    """bench.upstream in its own process on the load generator's core."""

    def __init__(self, args: argparse.Namespace, log_dir: Path) -> None:
        self.port = free_port()
        self.log = (log_dir / "upstream.log").open("ab")
        # --tls: HTTPS with a self-signed certificate for localhost, which the client trusts via SSL_CERT_FILE.
        self.cert = self_signed(log_dir) if getattr(args, "tls", False) else None
        tls = ("--tls-cert", str(self.cert[0]), "--tls-key", str(self.cert[1])) if self.cert else ()
        self.process = subprocess.Popen(
            [
                *pinning()[1],
                *(PYTHON, "-m", "bench.upstream", "--port", str(self.port)),
                *("--words", str(args.words), "--delay-ms", str(args.delay_ms)),
                *tls,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        deadline = time.monotonic() + UPSTREAM_START_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bench.upstream exited; see {self.log.name}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            except OSError:
                time.sleep(0.05)
            else:
                return
        self.stop()
        raise RuntimeError("bench.upstream did not listen in time")

    @property
    def base_url(self) -> str:
        if self.cert:
            return f"https://localhost:{self.port}/v1"
        return f"http://127.0.0.1:{self.port}/v1"

    def cpu_s(self) -> float:
        with open(f"/proc/{self.process.pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=10)
        self.log.close()
        return out.decode().strip()


def provider_env(provider: str, env: dict[str, str], upstream: Upstream | None) -> dict[str, str]:
    if provider == "mock":
        return env
    assert upstream is not None
    return {
        **env,
        "OPENAI_API_KEY": "sk-bench-not-a-key",
        "OPENAI_BASE_URL": upstream.base_url,
        "OPENAI_MODEL": "gpt-4o-mini",
        "OPENAI_MAX_RETRIES": "0",
        "OPENAI_HTTP_TRANSPORT": "httpx" if provider == "openai-httpx" else "asyncio",
        **({"SSL_CERT_FILE": str(upstream.cert[0])} if upstream.cert else {}),
    }


def stream_options(args: argparse.Namespace, clients: int) -> list[str]:
    spread = str(args.spread_ms) if args.spread_ms is not None else "100" if args.quick else "1000"
    return [
        *("--delay-ms", str(args.delay_ms), "--settle", "0.3" if args.quick else "1.5"),
        *("--clients", str(clients), "--words", str(args.words), "--spread-ms", spread),
        *(("--batch",) if args.batch else ()),
    ]


# Where a sample's stack passes through, by the path py-spy prints ("name (openai/_models.py:537)"). A sample
# counts once for every group it passes through, so the groups overlap (the provider calls the SDK, the SDK the
# HTTP client): each share reads "X % of the busy samples were inside this".
PACKAGES = {
    "openai SDK (openai/)": ("(openai/",),
    "pydantic": ("(pydantic/", "(pydantic_core/"),
    "typing/inspect introspection": ("(typing.py", "(inspect.py", "(typing_extensions.py"),
    "HTTP client (httpx2, httpcore2, h11, anyio)": ("(httpx2/", "(httpcore2/", "(h11/", "(anyio/"),
    "the provider's stream (OpenAIScriptStream.__anext__)": ("OpenAIScriptStream.__anext__ (",),
    "mock stream (MockScriptStream)": ("MockScriptStream.",),
    "runner._emit: frames to the sockets": ("_emit (streaming/runner.py",),
    "WebSocket framing (autobahn)": ("(autobahn/",),
    "Redis client": ("(redis/",),
    "Django ORM": ("(django/db/",),
}


def summarize(path: Path, top: int = 12) -> list[str]:
    """Shares of the server's busy samples per group, and the heaviest leaf frames."""
    totals: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        for name, needles in PACKAGES.items():
            if any(needle in stack for needle in needles):
                totals[name] += count
        leaves[stack.rsplit(";", 1)[-1]] += count
    if not samples:
        return [f"{path.name}: no samples"]
    lines = [f"{path.name}: {samples} busy samples (200 Hz); inside:"]
    lines += [f"  {100 * totals[name] / samples:5.1f} %  {name}" for name in PACKAGES if totals[name]]
    lines += ["  heaviest leaf frames:"]
    lines += [f"  {100 * count / samples:5.1f} %  {leaf}" for leaf, count in leaves.most_common(top)]
    return lines


def figures(provider: str, r: dict[str, Any], per_stream_wps: float) -> str:
    if "crashed" in r:
        return f"{provider:12} load generator failed: {r['crashed']}"
    per_cpu = r["words_per_cpu_s"] or 0
    return (
        f"{provider:12} C={r['clients']} W={r['words_per_stream']} D={r['delay_ms']:g}: "
        f"{r['words_per_s']:.0f} words/s; late p50 {r['late_p50_ms']} p99 {r['late_p99_ms']} max "
        f"{r['late_max_ms']} ms (p99 from the first word {r.get('late_from_first_p99_ms')} ms, start p99 "
        f"{r['start_p99_ms']} ms; {r.get('peak_running')} at once, generate to end p50 {r.get('took_p50_s')} max "
        f"{r.get('took_max_s')} s); {r['completed']} done {r['failed']} failed {r['gaps']} gaps; "
        f"server cpu {r['server_cpu_pct']}%, {per_cpu:.0f} words/cpu-s = {per_cpu / per_stream_wps:.0f} "
        f"streams/core; loadgen cpu {r['loadgen_cpu_pct']}%"
        + (f", upstream cpu {r['upstream_cpu_pct']}%" if "upstream_cpu_pct" in r else "")
        + f"; load {r['loadavg']}"
    )


def held(r: dict[str, Any]) -> bool:
    """Every stream ran at once, on time and whole: p99 < 100 ms counted from stream.started and from the
    stream's first word (an upstream writes before stream.started, so the first reads low under a burst)."""
    return on_time(r) and (r.get("late_from_first_p99_ms") or 0) < 100


class Ramp:
    """Per provider, the most streams that held before the first step that did not."""

    def __init__(self) -> None:
        self.most: dict[str, int] = {}
        self.crossed: dict[str, int] = {}

    def step(self, provider: str, clients: int, r: dict[str, Any]) -> None:
        if provider in self.crossed:
            return
        if held(r):
            self.most[provider] = clients
        else:
            self.crossed[provider] = clients

    def lines(self, providers: list[str]) -> list[str]:
        out = []
        for provider in providers:
            crossed = self.crossed.get(provider)
            verdict = f"crossed at C={crossed}" if crossed else "held at every step"
            out.append(
                f"ramp {provider}: most streams at once with p99 < 100 ms (from stream.started and from the first "
                f"word), 0 gaps, 0 failures: {self.most.get(provider, 0)} ({verdict})"
            )
        return out


def run_step(
    args: argparse.Namespace, work: Path, env: dict[str, str], upstream: Upstream | None, *, provider: str, clients: int
) -> dict[str, Any]:
    mode = parse_mode(f"{args.server}:{args.store}")
    if args.store == "redis" and (problem := redis_flush(args.redis_url)):
        raise RuntimeError(f"redis at {args.redis_url}: {problem}")
    server = Server(mode, provider_env(provider, mode_env(mode, env, args.redis_url), upstream), work, 2048).start()
    up0 = upstream.cpu_s() if upstream else 0.0
    t0 = time.monotonic()
    try:
        users = -(-clients // 4)
        options = stream_options(args, clients)
        if args.profile:
            options += ["--spy-out", str(args.profile / f"{provider}-C{clients}.txt")]
        result = run_loadgen(server, "stream", options, users, 120 if args.quick else 900)
    finally:
        server.stop()
    if upstream is not None and provider.startswith("openai") and "crashed" not in result:
        # Over the whole step (logins and settling included): an upper bound of the upstream's share of core 1.
        result["upstream_cpu_pct"] = round(100 * (upstream.cpu_s() - up0) / (time.monotonic() - t0), 1)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    providers = [p for p in args.providers.split(",") if p]
    steps = [int(c) for c in args.ramp.split(",") if c.strip()] or [args.clients]
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None  # a throwaway SQLite database: no disk fsyncs
    work = Path(tempfile.mkdtemp(prefix="creatornexus-provider-bench-", dir=shm))
    env = base_env(args, work)
    per_stream_wps = 1000 / args.delay_ms
    lines: list[str] = []
    bad = 0
    ramp = Ramp()
    upstream = None
    started = time.monotonic()
    try:
        subprocess.run(
            [PYTHON, "-m", "bench.fixtures", "--users", str(-(-max(steps) // 4)), "--password", PASSWORD],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=300,
        )
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
        upstream = Upstream(args, work) if any(p.startswith("openai") for p in providers) else None
        print(f"bench.provider: {machine()}; work dir {work}", flush=True)
        for clients in steps:
            results = {}
            for provider in providers:
                results[provider] = r = run_step(args, work, env, upstream, provider=provider, clients=clients)
                lines.append(figures(provider, r, per_stream_wps))
                print("  " + lines[-1], flush=True)
                bad += 1 if "crashed" in r else int(r["failed"]) + int(r["gaps"])
                ramp.step(provider, clients, r)
            mock = results.get("mock")
            for name, r in results.items():
                if name == "mock" or not mock or "crashed" in mock or "crashed" in r or not r["words_per_cpu_s"]:
                    continue
                ratio = mock["words_per_cpu_s"] / r["words_per_cpu_s"]
                lines.append(f"C={clients}: {name} CPU per word = {ratio:.2f}x the mock's")
                print("  " + lines[-1], flush=True)
        if len(steps) > 1:
            lines += ramp.lines(providers)
    finally:
        if upstream is not None:
            lines.append(f"upstream: {upstream.stop()}")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.profile:
        for path in sorted(args.profile.glob("*.txt")):
            lines += summarize(path)
    lines.append(f"machine: {machine()}")
    lines.append(f"command: python -m bench.provider {' '.join(argv if argv is not None else sys.argv[1:])}")
    lines.append(f"took {time.monotonic() - started:.0f} s; gaps + failures: {bad}")
    print("\n" + "\n".join(lines), flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
