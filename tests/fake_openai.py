"""A small OpenAI-compatible chat-completions server for tests: real sockets, real chunked SSE, told per test how
to misbehave (pace, stall, drop, 429/500/401/404, malformed chunk, no finish reason)."""

from __future__ import annotations

import asyncio
import json
import select
import socket
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# How often a stalled response checks whether the client went away; the tests themselves never sleep.
_POLL_S = 0.02


@dataclass
class Scenario:
    """What the fake does with one request; `deltas` defaults to the text split every 3 characters."""

    text: str = "Hello from the fake model."
    deltas: list[str] | None = None
    status: int = 200
    retry_after: str | None = None
    # Write each SSE event in pieces of this many bytes (separate chunked writes, TCP_NODELAY).
    byte_split: int | None = None
    delay_s: float = 0.0
    finish_reason: str | None = "stop"
    usage: dict[str, int] = field(
        default_factory=lambda: {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    )
    drop_after: int | None = None  # reset the connection after this many content chunks
    stall_after: int | None = None  # stop sending after this many content chunks until released
    malformed_after: int | None = None  # send a non-JSON event after this many content chunks
    wrong_shape_after: int | None = None  # send JSON that is no chat-completion chunk after this many
    error_after: int | None = None  # send an {"error": ...} event (as OpenAI does mid-stream) after this many
    crlf: bool = False  # end SSE lines with CRLF instead of LF
    one_write: bool = False  # the whole body in one socket write (so in one read); no delay, stall or drop
    send_done: bool = True

    def content_deltas(self) -> list[str]:
        if self.deltas is not None:
            return self.deltas
        return [self.text[i : i + 3] for i in range(0, len(self.text), 3)]


@dataclass
class RecordedRequest:
    """One request the fake received."""

    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]


class FakeOpenAI:
    """Serves scenarios in order (the last one repeats) on 127.0.0.1 from a background thread."""

    def __init__(self) -> None:
        self.scenarios: list[Scenario] = [Scenario()]
        self.requests: list[RecordedRequest] = []
        self.disconnected = threading.Event()  # the client went away before the response ended
        self.stalled = threading.Event()  # a response reached its stall point
        self.release = threading.Event()  # lets stalled responses go on
        self._lock = threading.Lock()
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._serve, name="fake-openai", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def serve(self, *scenarios: Scenario) -> None:
        """Answer the next requests with these scenarios, in order; the last one repeats."""
        with self._lock:
            self.scenarios = list(scenarios)

    def next_scenario(self, request: RecordedRequest) -> Scenario:
        with self._lock:
            self.requests.append(request)
            return self.scenarios.pop(0) if len(self.scenarios) > 1 else self.scenarios[0]

    async def wait(self, event: threading.Event, timeout: float = 5.0) -> bool:
        """Wait for one of this fake's events without blocking the test's event loop; False on timeout."""
        return await asyncio.to_thread(event.wait, timeout)

    def start(self) -> None:
        self._thread.start()

    def _serve(self) -> None:
        # A short poll so that stop() (shutdown) returns at once rather than after the default 0.5 s.
        self._server.serve_forever(poll_interval=_POLL_S)

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Server(ThreadingHTTPServer):
    """Daemon handler threads that never block shutdown; handlers find their fake here."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, fake: FakeOpenAI) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-response is a normal test event, not a traceback."""


class _ClientGone(Exception):
    """The client closed its end of the connection."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_POST(self) -> None:
        assert isinstance(self.server, _Server)
        fake = self.server.fake
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.loads(raw or b"{}")
        scenario = fake.next_scenario(RecordedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.close_connection = True
        if scenario.status != 200:
            self._send_error(scenario)
            return
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            self._stream(fake, scenario, body.get("model", "fake-model"))
        except (_ClientGone, BrokenPipeError, ConnectionResetError):
            fake.disconnected.set()

    def _send_error(self, scenario: Scenario) -> None:
        payload = json.dumps(
            {"error": {"message": f"fake error {scenario.status}", "type": "fake_error", "code": None}}
        ).encode()
        self.send_response(scenario.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        if scenario.retry_after is not None:
            self.send_header("Retry-After", scenario.retry_after)
        self.end_headers()
        self.wfile.write(payload)

    def _stream(self, fake: FakeOpenAI, scenario: Scenario, model: str) -> None:
        self._held = bytearray() if scenario.one_write else None
        deltas = scenario.content_deltas()
        for index, delta in enumerate(deltas):
            self._checkpoint(fake, scenario, index)
            last = index == len(deltas) - 1
            content = {"role": "assistant", "content": delta} if index == 0 else {"content": delta}
            finish_reason = scenario.finish_reason if last else None
            self._event(scenario, _chunk(model, [{"index": 0, "delta": content, "finish_reason": finish_reason}]))
        self._checkpoint(fake, scenario, len(deltas))
        self._event(scenario, _chunk(model, [], usage=scenario.usage))
        if scenario.send_done:
            self._event(scenario, "[DONE]")
        self._write(b"0\r\n\r\n")
        if self._held is not None:
            held, self._held = bytes(self._held), None
            self._write(held)

    def _checkpoint(self, fake: FakeOpenAI, scenario: Scenario, sent: int) -> None:
        """Misbehave here if the scenario says so after `sent` content chunks; notice a client that left."""
        if scenario.drop_after == sent:
            # SO_LINGER 0: close with a TCP reset, as a crashed upstream or a proxy would.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            raise _ClientGone
        if scenario.malformed_after == sent:
            self._event(scenario, '{"id": "chatcmpl-fake", "choices": [')
        if scenario.wrong_shape_after == sent:
            self._event(scenario, '{"id": "chatcmpl-fake", "choices": ["not a choice"]}')
        if scenario.error_after == sent:
            self._event(scenario, {"error": {"message": "The server had an error", "type": "server_error"}})
        if scenario.stall_after == sent:
            fake.stalled.set()
            while not fake.release.wait(_POLL_S):
                self._raise_if_client_gone()
        elif scenario.delay_s and sent:
            if fake.release.wait(scenario.delay_s):
                pass  # released early: go on
        self._raise_if_client_gone()

    def _raise_if_client_gone(self) -> None:
        readable, _, _ = select.select([self.connection], [], [], 0)
        if readable and not self.connection.recv(1, socket.MSG_PEEK):
            raise _ClientGone

    def _event(self, scenario: Scenario, data: dict[str, Any] | str) -> None:
        text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        raw = (f"data: {text}\r\n\r\n" if scenario.crlf else f"data: {text}\n\n").encode()
        step = scenario.byte_split or len(raw)
        for start in range(0, len(raw), step):
            piece = raw[start : start + step]
            self._write(b"%x\r\n%s\r\n" % (len(piece), piece))

    _held: bytearray | None = None

    def _write(self, data: bytes) -> None:
        if self._held is not None:
            self._held += data
            return
        self.wfile.write(data)
        self.wfile.flush()


def _chunk(model: str, choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": choices,
        "usage": usage,
    }


def unused_port() -> int:
    """A local port nobody listens on (for connection-refused tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
