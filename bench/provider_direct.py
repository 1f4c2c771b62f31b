"""The OpenAI provider alone: N streams in one process against bench.upstream, CPU per streamed chunk.

    .venv/bin/python -m bench.provider_direct                      # 200 streams, W=200, D=25, lean transport
    .venv/bin/python -m bench.provider_direct --transport httpx    # over the SDK's own transport
    .venv/bin/python -m bench.provider_direct --streams 1000
    .venv/bin/python -m bench.provider_direct --streams 1000 --tls          # HTTPS, as OpenAI's API

No server, socket side or store: this process (pinned to core 0) opens the streams with OpenAIProvider and
reads them through the runner's WordSplitter, as a generation does (over the lean transport pushed a window at a
time by the loop's read pass, as for multi-word listeners, or `--as-it-comes` as each read arrives, or
`--iterate`d as before push mode), while bench.upstream streams one word per
chunk every D ms on core 1. Its own CPU time over the run, divided by the chunks, is what the provider path
costs per word (request building and connections included); bench.provider measures the whole product.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("-W", "--words", type=int, default=200)
    parser.add_argument("-D", "--delay-ms", type=int, default=25)
    parser.add_argument("--transport", choices=["asyncio", "httpx"], default="asyncio")
    parser.add_argument("--tls", action="store_true", help="the upstream speaks HTTPS (self-signed, trusted here)")
    parser.add_argument("--spread-ms", type=float, default=1000, help="streams are opened over this long")
    parser.add_argument("--cold", action="store_true", help="no warm-up stream: the first burst of a process")
    parser.add_argument(
        "--iterate", action="store_true", help="read by iterating even where the transport can push (as before push)"
    )
    parser.add_argument(
        "--as-it-comes",
        action="store_true",
        help="push each read as it arrives, not a window at a time by the read pass (as for one-word listeners)",
    )
    return parser.parse_args(argv)


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(args: argparse.Namespace) -> dict[str, float]:
    from streaming.protocol import Platform, ScriptRequest
    from streaming.providers.openai import OpenAIProvider
    from streaming.words import WordSplitter

    request = ScriptRequest(topic="pour-over coffee", platform=Platform.TIKTOK, duration=80)

    opens: list[float] = []

    async def one() -> int:
        splitter, words = WordSplitter(), 0
        asked = time.monotonic()
        stream = await OpenAIProvider().open(request)
        opens.append(time.monotonic() - asked)

        def take(delta: str) -> None:
            nonlocal words
            words += len(splitter.feed(delta))

        if stream.push_text is not None and not args.iterate:  # as the runner reads it
            await stream.push_text(take, None if args.as_it_comes else lambda: True)
        else:
            async for delta in stream:
                take(delta)
        return words + len(splitter.flush())

    if not args.cold:
        await one()  # the client, its first connection and the SDK's lazy imports, outside the measure
    opens.clear()
    started, cpu0 = time.monotonic(), cpu_s()
    tasks = []
    for i in range(args.streams):
        tasks.append(asyncio.create_task(one()))
        if args.spread_ms:
            await asyncio.sleep(args.spread_ms / 1000 / args.streams if i % 10 == 9 else 0)
    words = sum(await asyncio.gather(*tasks))
    cpu, wall = cpu_s() - cpu0, time.monotonic() - started
    opens.sort()
    open_p50, open_p99 = opens[len(opens) // 2], opens[min(len(opens) - 1, int(0.99 * len(opens)))]
    return {
        "words": words,
        "cpu_s": round(cpu, 2),
        "wall_s": round(wall, 2),
        "open_p50_ms": round(open_p50 * 1000, 1),
        "open_p99_ms": round(open_p99 * 1000, 1),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bench.provider import Upstream
    from bench.run import base_env

    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {0})  # the upstream runs on core 1
    work = Path(tempfile.mkdtemp(prefix="creatornexus-provider-direct-"))
    upstream = Upstream(args, work)
    try:
        os.environ.update(base_env(args, work))
        os.environ.update(
            {
                "OPENAI_API_KEY": "sk-bench-not-a-key",
                "OPENAI_BASE_URL": upstream.base_url,
                "OPENAI_MAX_RETRIES": "0",
                "OPENAI_HTTP_TRANSPORT": args.transport,
            }
        )
        if upstream.cert:
            os.environ["SSL_CERT_FILE"] = str(upstream.cert[0])
        import django

        django.setup()
        r = asyncio.run(run(args))
    finally:
        upstream_figures = upstream.stop()
    per_chunk_us = r["cpu_s"] / r["words"] * 1e6 if r["words"] else float("nan")
    per_stream_wps = 1000 / args.delay_ms
    mode = " iterated" if args.iterate else " as it comes" if args.as_it_comes else " by the read pass"
    mode += " over TLS" if args.tls else ""
    print(
        f"provider alone, transport {args.transport}{mode}: {args.streams} streams x {args.words} words at "
        f"{args.delay_ms} ms: {r['words']} words in {r['wall_s']} s, {r['cpu_s']} CPU s = {per_chunk_us:.1f} "
        f"µs a chunk, {1e6 / per_chunk_us:.0f} chunks per CPU-second = {1e6 / per_chunk_us / per_stream_wps:.0f} "
        f"streams per core for the provider alone; open p50 {r['open_p50_ms']} p99 {r['open_p99_ms']} ms; "
        f"load {os.getloadavg()[0]:.1f}; upstream {upstream_figures}"
    )
    expected = args.streams * args.words
    return 0 if r["words"] == expected else 1


if __name__ == "__main__":
    sys.exit(main())
