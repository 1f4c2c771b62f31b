"""CPU of the product's own per-word path, without a server: pacer -> runner -> watch -> frame -> outbox.

N mock streams of W words at D ms a word run on the process's pacer, each with one listening watch (one word a
frame, or multi-word frames with --batch) whose outbox sends through a stand-in for the server's ASGI send (a
coroutine that returns at once, as uvicorn's does while the client reads). Printed: process CPU per frame and per
word, and frames per CPU-second; the server's own send and the socket write come on top of this.

    .venv/bin/python -m bench.frame_cost [--streams 2000] [--words 200] [--delay-ms 25] [--batch] [--profile F]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import time
from pathlib import Path
from typing import Any

import bench.standalone  # noqa: F401  (the path, settings module and throwaway keys, before Django)


class Socket:
    """What the outbox sends to: counts frames, like a server whose client keeps up."""

    def __init__(self) -> None:
        self.frames = 0

    async def send(self, message: dict[str, Any]) -> None:
        self.frames += 1


async def run(streams: int, words: int, delay_s: float, batch: bool) -> tuple[float, int, int]:
    from streaming.outbox import Outbox
    from streaming.pacer import close_pacer
    from streaming.protocol import Platform, ScriptRequest
    from streaming.providers.mock import MockScriptStream
    from streaming.runner import LiveStream, _hold_s, emit_words
    from streaming.watch import Watch

    request = ScriptRequest(topic="frame cost", platform=Platform.YOUTUBE, duration=60, request_id="r")
    script = [f"word{i} " for i in range(words)]
    sockets, outboxes, pushes = [], [], []
    for i in range(streams):
        socket = Socket()
        outbox = Outbox(socket.send, 1 << 20)
        live = LiveStream(f"session-{i:05d}", 1, "c", request, "p")
        live.listeners.add(Watch(outbox.put, live.session_id, 0, lambda _w: None, batch=batch))
        stream = MockScriptStream(script, delay_s)

        def sink(new: list[str], live: LiveStream = live) -> None:
            emit_words(live, new, held=live.held)

        pushes.append(stream.push(sink, lambda live=live: _hold_s(live)))
        sockets.append(socket)
        outboxes.append(outbox)
    started = time.process_time()
    await asyncio.gather(*pushes)
    cpu = time.process_time() - started
    for outbox in outboxes:
        await outbox.aclose()
    close_pacer()
    return cpu, sum(socket.frames for socket in sockets), streams * words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--words", type=int, default=200)
    parser.add_argument("--delay-ms", type=float, default=25)
    parser.add_argument("--batch", action="store_true")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the run here")
    args = parser.parse_args()
    import django

    django.setup()
    from streaming.registry import tune_garbage_collection

    tune_garbage_collection()  # as the server's registry does
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    cpu, frames, words = asyncio.run(run(args.streams, args.words, args.delay_ms / 1000, args.batch))
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    print(
        f"{args.streams} streams x {args.words} words at {args.delay_ms:g} ms{' (batch)' if args.batch else ''}: "
        f"{frames} frames, {words / frames:.2f} words a frame; {cpu * 1e6 / frames:.1f} us CPU a frame, "
        f"{cpu * 1e6 / words:.1f} us a word, {frames / cpu:,.0f} frames per CPU-second"
    )


if __name__ == "__main__":
    main()
