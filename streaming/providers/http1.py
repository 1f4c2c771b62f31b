"""A lean HTTP/1.1 transport for the OpenAI SDK's httpx2 client: asyncio protocols and one parse per read.

The SDK's default transport (httpcore2 over anyio, with h11) spends about 50 µs of CPU per streamed chunk: an
anyio cancel scope, a pause/resume of the socket and h11's parser on every read, then seven async generators
up to the caller. A chat stream is many small reads on long-lived connections, so this transport reads with a
BufferedProtocol into one buffer, un-chunks the body as it arrives (http1_parser.py) and wakes the reader once
per read; its read timeout is one timer per connection that re-arms itself when it fires, not one per read.

It speaks what the SDK needs: a request with a byte body over HTTP/1.1, TLS with the SDK's own certificate
settings (httpx2.create_ssl_context), keep-alive connections per origin. Failures are httpx2's exceptions
(ConnectError, ConnectTimeout, ReadTimeout, ReadError, RemoteProtocolError), which the SDK maps as it always
does. A proxy from the environment is not spoken here: openai_client() then keeps the SDK's own transport.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import ssl
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import httpx2

from streaming.providers import read_pass
from streaming.providers.http1_parser import ProtocolError, ResponseParser
from streaming.providers.read_pass import ReadPass, Source

logger = logging.getLogger(__name__)

READ_SIZE = 64 * 1024
DEFAULT_PORTS = {b"http": 80, b"https": 443}
# Idle connections kept per origin, and for how long: a process that ran a thousand streams keeps enough
# warm connections (TLS handshakes are the dear part) without holding sockets forever.
MAX_IDLE_PER_ORIGIN = 1000
KEEPALIVE_EXPIRY_S = 30.0

Origin = tuple[bytes, str, int]
# Push mode (Body.listen): called in the protocol callback with each batch of body bytes, then once with
# (None, None) at the body's end or (None, error) when it failed.
Receiver = Callable[[bytes | None, Exception | None], None]
# Push mode: asked after each read whether the body should be read by the loop's read pass from now on.
InPass = Callable[[], bool]
# The key of a response's extensions under which this transport offers its Body for push mode.
PUSH_BODY = "creatornexus.push_body"


_scratch = threading.local()


def _read_buffer() -> memoryview:
    """This thread's read buffer, shared by its connections.

    A read is parsed (and copied) within the callback that made it, so one buffer per thread (one loop) serves
    every connection: 64 KB each would be 64 MB at a thousand streams."""
    view: memoryview | None = getattr(_scratch, "view", None)
    if view is None:
        view = _scratch.view = memoryview(bytearray(READ_SIZE))
    return view


class Connection(asyncio.BufferedProtocol):
    """One connection to an origin; parses each response as its bytes arrive."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._view = _read_buffer()
        self.transport: asyncio.Transport | None = None
        self.parser: ResponseParser | None = None
        self.closed = False
        self.idle_since = 0.0
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._wait_started = 0.0
        self._read_timeout: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._drained: asyncio.Future[None] | None = None
        self._head_taken = False
        self._receiver: Receiver | None = None  # push mode: body bytes go here, no reader is woken
        self.answered = False  # bytes of the current request's response have arrived
        self._source: Source | None = None  # push mode: what the read pass reads for this connection
        self._pass: ReadPass | None = None
        self._in_pass: InPass | None = None
        self._parked: asyncio.Transport | None = None  # paused while nobody reads the body yet (_park)
        self._body_asked = False  # the body was read or listened to: no more parking for this response

    # -- asyncio.BufferedProtocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio.Transport's kind

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        self.answered = True
        if self.parser is None:
            self._fail(ProtocolError("bytes from an idle connection"))
            return
        try:
            self.parser.feed(self._view[:nbytes])  # copies: the buffer is shared (_read_buffer)
        except ProtocolError as exc:
            self._fail(exc)
            return
        if self._receiver is not None:
            self._push()
            return
        self._wake()
        self._park()

    def eof_received(self) -> bool:
        self._ended(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended(exc)

    def pause_writing(self) -> None:
        self._drained = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    # -- the request/response cycle
    async def send(self, head: bytes, body: bytes, method: bytes, timeouts: dict[str, Any]) -> None:
        """Write a request; its response is parsed from here on."""
        assert self.transport is not None
        if self.closed:  # the server hung up between connecting (or the last response) and now
            raise httpx2.RemoteProtocolError("Server disconnected without sending a response.")
        self.parser = ResponseParser(method)
        self._read_timeout = timeouts.get("read")
        self.transport.write(head + body)
        if self._drained is not None:
            try:
                async with asyncio.timeout(timeouts.get("write")):
                    await self._drained
            except TimeoutError:
                raise httpx2.WriteTimeout("timed out writing the request") from None

    async def wait(self) -> None:
        """Until the parser has something new (head, body bytes, the end) or the connection failed."""
        self._unpark()
        while True:
            if self._error is not None:
                raise self._error
            if self.parser is not None and (self.parser.body or self.parser.complete or self._ready_head()):
                return
            self._waiter = self._loop.create_future()
            self._wait_started = self._loop.time()
            if self._timer is None and self._read_timeout is not None:
                self._timer = self._loop.call_at(self._wait_started + self._read_timeout, self._on_timer)
            try:
                await self._waiter
            finally:
                self._waiter = None

    def _ready_head(self) -> bool:
        return self.parser is not None and self.parser.head is not None and not self._head_taken

    async def response_head(self) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        await self.wait()
        assert self.parser is not None and self.parser.head is not None
        self._head_taken = True
        head = self.parser.head
        return head.status, head.reason, head.headers

    async def body_chunk(self) -> bytes:
        """The body bytes that arrived since the last call; b"" at its end."""
        assert self.parser is not None
        self._body_asked = True
        if not self.parser.body and not self.parser.complete:
            await self.wait()
        pieces = self.parser.body
        if not pieces:
            return b""
        self.parser.body = []
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    @property
    def reusable(self) -> bool:
        parser = self.parser
        return (
            not self.closed
            and self._error is None
            and parser is not None
            and parser.complete
            and parser.head is not None
            and parser.head.keep_alive
        )

    def listen(self, receiver: Receiver | None, in_pass: InPass | None = None) -> None:
        """Push mode from now on: body bytes (those already here first) go to `receiver` as they are parsed,
        in the protocol callback, instead of waking a reader. The read timeout then counts from the last bytes.
        None stops it.

        With `in_pass`, asked again after every read: while it answers True the socket is read by the loop's
        read pass (read_pass.py) instead of as each chunk arrives."""
        self._receiver = receiver
        self._in_pass = in_pass
        self._body_asked = True
        if receiver is None:
            self._leave_pass()
            return
        self._wait_started = self._loop.time()
        if self._timer is None and self._read_timeout is not None:
            self._timer = self._loop.call_at(self._wait_started + self._read_timeout, self._on_timer)
        self._push()  # what is here already; then in or out of the read pass (_place)
        self._unpark()  # unless the read pass reads it now

    @property
    def read_by_pass(self) -> bool:
        """Whether the read pass reads this socket now (its bytes then waited up to one window)."""
        return self._source is not None

    def _place(self) -> None:
        """In the read pass or out of it, as the listener wants it now."""
        in_pass = self._in_pass
        if self._receiver is None or in_pass is None:
            return
        if in_pass():
            if self._source is None:
                self._join_pass()
        elif self._source is not None:
            self._leave_pass()

    def read_ready(self) -> None:
        """The read pass found bytes (or the end) waiting on this socket: read them as the loop would, into
        this connection or into the TLS layer in front of it."""
        source = self._source
        if source is None:
            return
        if source.transport.is_closing():  # closed under us (a TLS error): its socket number may be another's soon
            self._leave_pass(resume=False)
            return
        protocol = source.protocol
        try:
            nbytes = os.readv(source.fd, [protocol.get_buffer(-1)])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._leave_pass(resume=False)
            self._ended(exc)
            self.abort()
            return
        if nbytes:
            protocol.buffer_updated(nbytes)
            return
        self._leave_pass(resume=False)
        if not protocol.eof_received():  # as the socket's transport does at the end of its stream
            source.transport.close()

    def _park(self) -> None:
        """Stop reading a response whose head was taken while nobody waits for its body.

        A stream's body starts flowing as soon as the request is sent, but under a burst of starts its reader
        comes much later (the SDK's response handling, the stream's announcement): read as they come, those
        chunks would cost a read and a wake-up each to sit in the parser. They wait in the socket instead and
        come in one read when the body is waited for or listened to (_unpark, or the read pass). Over asyncio's
        TLS the raw socket is paused (pausing the TLS transport only stops decrypting: its socket is still read
        record by record)."""
        # Once the head is taken, whoever waits for or listens to the body has asked for it (_body_asked).
        parser, transport = self.parser, self.transport
        if (
            self._parked is not None
            or self._body_asked
            or not self._head_taken
            or parser is None
            or parser.complete
            or transport is None
            or self.closed
        ):
            return
        source = read_pass.source_of(transport, self)
        parked = source.transport if source is not None else transport
        parked.pause_reading()
        self._parked = parked

    def _unpark(self) -> None:
        """Read again (the read pass, when it reads this socket, has it paused itself)."""
        parked = self._parked
        if parked is not None and self._source is None:
            self._parked = None
            if not self.closed and not parked.is_closing():
                parked.resume_reading()

    def _join_pass(self) -> None:
        transport = self.transport
        if self.closed or self._error is not None or transport is None or not read_pass.available():
            return
        source = read_pass.source_of(transport, self)
        if source is None:
            return
        self._pass = read_pass.get_read_pass()
        self._pass.add(source.fd, self)
        source.transport.pause_reading()
        self._source = source
        self._parked = None

    def _leave_pass(self, *, resume: bool = True) -> None:
        """Back to the loop's reading (`resume`), or not (the socket is at its end or failing)."""
        source, pass_, self._source, self._pass = self._source, self._pass, None, None
        if source is None or pass_ is None:
            return
        pass_.remove(source.fd, self)
        if resume and not self.closed and not source.transport.is_closing():
            source.transport.resume_reading()

    def _push(self) -> None:
        receiver = self._receiver
        assert receiver is not None and self.parser is not None
        parser = self.parser
        if parser.body:
            pieces, parser.body = parser.body, []
            self._wait_started = self._loop.time()
            receiver(pieces[0] if len(pieces) == 1 else b"".join(pieces), None)
        if self._receiver is None:
            return  # the receiver stopped listening
        if parser.complete:  # whole: a reset or stray bytes after it change nothing (as for a reader)
            self._receiver = None
            self._leave_pass()
            receiver(None, None)
        elif self._error is not None:
            self._receiver = None
            self._leave_pass()
            receiver(None, self._error)
        else:
            self._place()

    def reset(self) -> None:
        """Ready for the next request (the last one was read to its end)."""
        self.parser = None
        self._receiver = None
        self._leave_pass()
        self._unpark()  # an idle connection reads, so that a server's close is seen
        self._body_asked = False
        self._head_taken = False
        self.answered = False
        self._cancel_timer()

    def abort(self) -> None:
        """Close now, unread bytes and all: the server sees the client go away."""
        self.closed = True
        self._cancel_timer()
        self._leave_pass()
        if self.transport is not None:
            self.transport.abort()

    # -- internals
    def _wake(self) -> None:
        if self._receiver is not None:
            self._push()
        elif self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, exc: ProtocolError) -> None:
        if self._error is None:
            self._error = httpx2.RemoteProtocolError(str(exc))
        self.abort()
        self._wake()

    def _ended(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        if self.parser is None or self._error is not None:
            return
        if exc is not None:
            self._error = httpx2.ReadError(str(exc) or type(exc).__name__)
        elif self.parser.head is None:
            self._error = httpx2.RemoteProtocolError("Server disconnected without sending a response.")
        else:
            try:
                self.parser.eof()
            except ProtocolError as error:
                self._error = httpx2.RemoteProtocolError(str(error))
        self._wake()

    def _on_timer(self) -> None:
        """The read timeout, checked once per period: a wait that began later is given its full time."""
        self._timer = None
        if (self._waiter is None and self._receiver is None) or self._read_timeout is None:
            return  # nobody reads now; the next wait arms the timer again
        if self._source is not None:
            try:
                self.read_ready()  # bytes the read pass has not read yet came in time
            except Exception:
                logger.exception("reading a pushed response body failed")  # as the read pass treats it
                self.abort()
                return
            if self._timer is not None or self._receiver is None:
                return  # they ended the body, or the timer was armed again meanwhile
        due = self._wait_started + self._read_timeout
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._on_timer)
            return
        self._error = httpx2.ReadTimeout("timed out waiting for the server")
        self.abort()
        self._wake()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Body(httpx2.AsyncByteStream):
    """A response body read from its connection; aclose() keeps the connection if it was read to its end."""

    def __init__(self, transport: Http1Transport, origin: Origin, connection: Connection) -> None:
        self._transport = transport
        self._origin = origin
        self._connection: Connection | None = connection

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self._connection is not None:
            chunk = await self._connection.body_chunk()
            if not chunk:
                return
            yield chunk

    def listen(self, receiver: Receiver | None, in_pass: InPass | None = None) -> None:
        """Push mode (Connection.listen): the body's bytes go to `receiver` as they arrive; None stops it."""
        if self._connection is None:
            if receiver is not None:
                receiver(None, httpx2.StreamClosed())
            return
        self._connection.listen(receiver, in_pass)

    @property
    def read_by_pass(self) -> bool:
        """Whether the bytes being pushed now were read by the loop's read pass (they waited up to a window)."""
        return self._connection is not None and self._connection.read_by_pass

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.listen(None)
            self._transport.release(self._origin, connection)


class Http1Transport(httpx2.AsyncBaseTransport):
    """HTTP/1.1 over asyncio for the SDK's client, with a keep-alive pool per origin (docs/ai.md)."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl_context = ssl_context
        self._idle: dict[Origin, collections.deque[Connection]] = {}

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        scheme = url.raw_scheme
        if scheme not in DEFAULT_PORTS:
            raise httpx2.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        origin = (scheme, url.raw_host.decode("ascii"), url.port or DEFAULT_PORTS[scheme])
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        head, body = await _serialize(request)
        method = request.method.encode("ascii")
        connection, reused = await self._acquire(origin, request, timeouts)
        try:
            try:
                await connection.send(head, body, method, timeouts)
                status, reason, headers = await connection.response_head()
            except (httpx2.RemoteProtocolError, httpx2.ReadError):
                if not reused or connection.answered:
                    raise
                # The server closed this idle connection as we sent, before a byte of answer: once more, anew.
                connection.abort()
                connection, _ = await self._acquire(origin, request, timeouts, fresh=True)
                await connection.send(head, body, method, timeouts)
                status, reason, headers = await connection.response_head()
        except BaseException:
            connection.abort()
            raise
        stream = Body(self, origin, connection)
        return httpx2.Response(
            status_code=status,
            headers=headers,
            stream=stream,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason, PUSH_BODY: stream},
        )

    def release(self, origin: Origin, connection: Connection) -> None:
        """A response was closed: keep its connection for the next request, or close it."""
        now = asyncio.get_running_loop().time()
        idle = self._idle.setdefault(origin, collections.deque())
        while idle and (idle[0].closed or now - idle[0].idle_since >= KEEPALIVE_EXPIRY_S):
            idle.popleft().abort()  # the oldest first: closed by the server, or unused for too long
        if not connection.reusable or len(idle) >= MAX_IDLE_PER_ORIGIN:
            connection.abort()
            return
        connection.reset()
        connection.idle_since = now
        idle.append(connection)

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.abort()
        self._idle.clear()

    async def _acquire(
        self, origin: Origin, request: httpx2.Request, timeouts: dict[str, Any], *, fresh: bool = False
    ) -> tuple[Connection, bool]:
        loop = asyncio.get_running_loop()
        idle = self._idle.get(origin, collections.deque())
        while idle and not fresh:
            connection = idle.pop()
            if not connection.closed and loop.time() - connection.idle_since < KEEPALIVE_EXPIRY_S:
                return connection, True
            connection.abort()
        scheme, host, port = origin
        context = self._tls() if scheme == b"https" else None
        server_hostname = (request.extensions.get("sni_hostname") or host) if context else None
        try:
            async with asyncio.timeout(timeouts.get("connect")):
                _, connection = await loop.create_connection(
                    lambda: Connection(loop), host, port, ssl=context, server_hostname=server_hostname
                )
        except TimeoutError:
            raise httpx2.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except OSError as exc:
            raise httpx2.ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        return connection, False

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx2.create_ssl_context()
            self._ssl_context.set_alpn_protocols(["http/1.1"])
        return self._ssl_context


async def _serialize(request: httpx2.Request) -> tuple[bytes, bytes]:
    """The request line and headers, and the body (always sent with its length)."""
    body = await request.aread()
    lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"), request.url.raw_path)]
    for name, value in request.headers.raw:
        if b"\r" in value or b"\n" in value or b"\r" in name or b"\n" in name:
            raise httpx2.LocalProtocolError("a header holds a line break")
        if name.lower() in (b"transfer-encoding", b"content-length"):
            continue
        lines.append(b"%s: %s\r\n" % (name, value))
    if body or request.method not in ("GET", "HEAD"):
        lines.append(b"Content-Length: %d\r\n" % len(body))
    lines.append(b"\r\n")
    return b"".join(lines), body
