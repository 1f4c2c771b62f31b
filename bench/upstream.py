"""A paced OpenAI-compatible upstream for the provider bench: many streams from one process on its own core.

    python -m bench.upstream --port P --words 200 --delay-ms 25

Every `POST /v1/chat/completions` gets a streamed chat completion shaped like OpenAI's (HTTP/1.1, chunked
SSE, the fields a real chunk carries, `usage: null` on each chunk with `include_usage`): a first chunk with
the role, then W chunks of one word each (" word", the leading space as a model's tokens have it), word k at
start + k x D against the stream's own schedule (never "D after the previous one", so timer overshoot does not
pile up), then the finish chunk, the usage chunk and `[DONE]`. Connections are kept alive like OpenAI's.

tests/fake_openai.py is the tests' fake (a thread per request, told per test how to misbehave); it cannot
serve a thousand paced streams, this one does: one pacer task writes every due chunk of every stream in one
pass, each chunk pre-encoded but for its word. A client that goes away is dropped at once.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import os
import resource
import signal
import socket
import ssl
import sys
import time

import orjson

# Words of a creator's script, cycled; what the words are does not matter, their size does (~5 bytes).
TEXT = (
    "Stop scrolling, because this one habit will change how you make coffee at home forever. Most people "
    "pour boiling water straight onto the grounds, and that is exactly why their cup tastes bitter. Let the "
    "kettle rest for thirty seconds, bloom the grounds with a splash of water, then pour slowly in circles. "
    "Follow for part two, where we fix the grind size and the ratio in under a minute."
).split()
MODEL = "gpt-4o-mini-2024-07-18"
MAX_HEAD = 64 * 1024


def _event(payload: bytes) -> bytes:
    """One SSE event as one HTTP chunk."""
    data = b"data: " + payload + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


def _chunk_json(delta: dict[str, object], finish_reason: str | None, created: int) -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-BenchUpstream0000000000000001",
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL,
            "service_tier": "default",
            "system_fingerprint": "fp_bench000001",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            "usage": None,
            "obfuscation": "aBcDeF",
        }
    )


class Encoded:
    """The bytes of every event a stream sends, made once; a word's chunk is a prefix, the word, a suffix."""

    def __init__(self, words: int) -> None:
        created = int(time.time())
        marker = b'"@@word@@"'
        prefix, suffix = _chunk_json({"content": marker.strip(b'"').decode()}, None, created).split(marker)
        self.first = _event(_chunk_json({"role": "assistant", "content": "", "refusal": None}, None, created))
        usage = {"prompt_tokens": 120, "completion_tokens": words, "total_tokens": 120 + words}
        tail = _chunk_json({}, "stop", created)
        usage_chunk = orjson.dumps(
            {
                "id": "chatcmpl-BenchUpstream0000000000000001",
                "object": "chat.completion.chunk",
                "created": created,
                "model": MODEL,
                "choices": [],
                "usage": usage,
            }
        )
        self.last = _event(tail) + _event(usage_chunk) + _event(b"[DONE]") + b"0\r\n\r\n"
        self.words = [
            _event(prefix + orjson.dumps(w if i == 0 else " " + w) + suffix)
            for i, w in enumerate(itertools.islice(itertools.cycle(TEXT), words))
        ]


HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n"
    b"cache-control: no-cache\r\nx-request-id: req_bench\r\nopenai-processing-ms: 120\r\n"
    b"connection: keep-alive\r\n\r\n"
)


class Stream:
    """One response in flight: where it is in its schedule."""

    __slots__ = ("conn", "due", "sent")

    def __init__(self, conn: Connection, due: float) -> None:
        self.conn = conn
        self.due = due
        self.sent = 0

    def __lt__(self, other: Stream) -> bool:
        return self.due < other.due


class Upstream:
    """The pacer and its figures: one pass writes every due chunk of every stream."""

    def __init__(self, words: int, delay_s: float) -> None:
        self.encoded = Encoded(words)
        self.delay_s = delay_s
        self.queue: list[Stream] = []  # a heap by due time
        self.wake = asyncio.Event()
        self.requests = 0
        self.completed = 0
        self.dropped = 0
        self.late_max_s = 0.0

    def start(self, conn: Connection) -> None:
        self.requests += 1
        conn.write(HEAD + self.encoded.first)
        heapq.heappush(self.queue, Stream(conn, time.monotonic() + self.delay_s))
        self.wake.set()

    async def pace(self) -> None:
        queue, words, last = self.queue, self.encoded.words, self.encoded.last
        while True:
            if not queue:
                self.wake.clear()
                await self.wake.wait()
                continue
            wait = queue[0].due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            now = time.monotonic()
            self.late_max_s = max(self.late_max_s, now - queue[0].due)
            while queue and queue[0].due <= now:
                stream = heapq.heappop(queue)
                if stream.conn.closed:
                    self.dropped += 1
                    continue
                stream.conn.write(words[stream.sent])
                stream.sent += 1
                if stream.sent == len(words):
                    stream.conn.write(last)
                    stream.conn.busy = False
                    self.completed += 1
                    continue
                stream.due += self.delay_s  # its schedule, even when this pass is late: it catches up
                heapq.heappush(queue, stream)


class Connection(asyncio.Protocol):
    """One client connection: parse each request head and body, then hand the response to the pacer."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.closed = False
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > MAX_HEAD:
                self._refuse(b"431 Request Header Fields Too Large")
            return
        head = bytes(self.buf[:end]).lower()
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name == b"content-length":
                length = int(value)
        if len(self.buf) < end + 4 + length:
            return
        body = bytes(self.buf[end + 4 : end + 4 + length])
        del self.buf[: end + 4 + length]
        if not head.startswith(b"post /v1/chat/completions ") or self.busy:
            self._refuse(b"404 Not Found")
            return
        if not orjson.loads(body).get("stream"):
            self._refuse(b"400 Bad Request")
            return
        self.busy = True
        self.upstream.start(self)

    def _refuse(self, status: bytes) -> None:
        self.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        if self.transport is not None:
            self.transport.close()


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def serve(port: int, words: int, delay_s: float, ready_fd: int | None, tls: ssl.SSLContext | None = None) -> None:
    upstream = Upstream(words, delay_s)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(upstream), "127.0.0.1", port, backlog=4096, ssl=tls)
    pacer = asyncio.create_task(upstream.pace())
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if ready_fd is not None:
        os.write(ready_fd, b"ready\n")
    cpu0, t0 = _cpu_s(), time.monotonic()
    await stop.wait()
    pacer.cancel()
    server.close()
    figures = {
        "requests": upstream.requests,
        "completed": upstream.completed,
        "dropped": upstream.dropped,
        "pacer_late_max_ms": round(upstream.late_max_s * 1000, 1),
        "cpu_s": round(_cpu_s() - cpu0, 2),
        "wall_s": round(time.monotonic() - t0, 2),
    }
    sys.stdout.write(orjson.dumps(figures).decode() + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--words", type=int, default=200, help="word chunks per response (W)")
    parser.add_argument("--delay-ms", type=float, default=25, help="one word chunk every D ms per stream")
    parser.add_argument("--ready-fd", type=int, help="write 'ready' to this file descriptor once listening")
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM) ...")
    parser.add_argument("--tls-key", help="... and this key, as OpenAI's API is served")
    args = parser.parse_args()
    tls = None
    if args.tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    asyncio.run(serve(args.port, args.words, args.delay_ms / 1000, args.ready_fd, tls))


if __name__ == "__main__":
    main()
