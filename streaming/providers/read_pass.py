"""One read pass per event loop for pushed response bodies: every ready connection read in one sweep.

A streamed chat completion is a long run of small writes (one chunk per token, 40 a second and more per
stream). Read by the event loop as each arrives, every chunk costs a loop iteration: an `epoll_wait`, a handle,
the transport's callback and a `recv` of one chunk. At 1,000 streams that was ~30 µs of CPU per chunk
(bench.provider_direct), most of a core before a word reached a socket. Here a pushed body's socket leaves the
loop's selector for the pass's own epoll; every READ_WINDOW_S one `epoll_wait(0)` names the sockets with bytes
waiting and each is read once, taking every chunk that came since the last pass. Words are late by at most one
window, which the multi-word frames already allow (pacer.HOLD_S).

Over TLS the pass reads the raw socket and hands the bytes to asyncio's own TLS layer (its SSLProtocol, through
the BufferedProtocol calls its socket transport would make), which decrypts them into the connection as
always. Transports of other kinds (uvloop's TLS) keep being read by the loop. The connection goes back to the
loop when its body ends.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import select
from asyncio import sslproto
from dataclasses import dataclass
from typing import Any, Protocol

from streaming.pacer import HOLD_S
from streaming.perloop import PerLoop

logger = logging.getLogger(__name__)

# A pass every multi-word window: a word waits no longer for its read than a multi-word frame holds it, and
# words read by a pass are sent at once (they were held already).
READ_WINDOW_S = HOLD_S


class Reader(Protocol):
    def read_ready(self) -> None: ...

    def abort(self) -> None: ...


def available() -> bool:
    """Whether this platform has epoll (Linux): elsewhere every body is read by the loop as it comes."""
    return hasattr(select, "epoll")


@dataclass(slots=True)
class Source:
    """What the pass reads for one connection: the socket, the transport that owns it (paused meanwhile) and
    the protocol its bytes go to (the connection itself, or asyncio's TLS layer in front of it)."""

    fd: int
    transport: asyncio.Transport
    protocol: asyncio.BufferedProtocol


def source_of(transport: asyncio.Transport, protocol: asyncio.BufferedProtocol) -> Source | None:
    """Where the pass can read `transport`'s bytes from, or None: the loop keeps reading it."""
    if transport.is_closing():
        return None
    if transport.get_extra_info("sslcontext") is None:
        sock = transport.get_extra_info("socket")
        return None if sock is None else Source(sock.fileno(), transport, protocol)
    if type(transport) is not sslproto._SSLProtocolTransport:
        return None  # another loop's TLS (uvloop): its records are read where it reads them
    tls: Any = transport._ssl_protocol
    if (
        getattr(tls, "_state", None) is not sslproto.SSLProtocolState.WRAPPED
        or getattr(tls, "_ssl_reading_paused", True)  # its own read flow control is at work: leave it be
        or getattr(tls, "_app_reading_paused", True)
    ):
        return None
    raw = tls._transport
    sock = raw.get_extra_info("socket") if raw is not None else None
    if sock is None or raw.is_closing() or not isinstance(tls, asyncio.BufferedProtocol):
        return None
    return Source(sock.fileno(), raw, tls)


class ReadPass:
    """The loop's read pass: an epoll of the pushed sockets, swept every READ_WINDOW_S while any is open."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._epoll = select.epoll()
        self._readers: dict[int, Reader] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._started = 0.0

    def add(self, fd: int, reader: Reader) -> None:
        self._epoll.register(fd, select.EPOLLIN)
        self._readers[fd] = reader
        if self._timer is None:
            self._arm(self._loop.time() + READ_WINDOW_S)

    def remove(self, fd: int, reader: Reader) -> None:
        """Stop reading `fd` for `reader` (only its own: under uvloop a closed socket's number may already be
        another connection's by the time the first one leaves)."""
        if self._readers.get(fd) is reader:
            del self._readers[fd]
            try:
                self._epoll.unregister(fd)
            except OSError:
                pass

    def _arm(self, when: float) -> None:
        # A context of its own: the pass reads for every generation, it runs in none of theirs.
        self._timer = self._loop.call_at(when, self._pass, context=contextvars.Context())

    def _pass(self) -> None:
        self._timer = None
        now = self._loop.time()
        readers = self._readers
        try:
            # Every ready socket in one call (the default would stop at 1,023).
            for fd, _events in self._epoll.poll(0, max(len(readers), 1)):
                reader = readers.get(fd)
                if reader is None:
                    continue
                try:
                    reader.read_ready()
                except Exception:
                    # One connection's failure is its own: it is dropped (its stream fails as on a reset), the
                    # pass goes on for every other.
                    logger.exception("reading a pushed response body failed")
                    self.remove(fd, reader)
                    reader.abort()
        finally:
            if readers and self._timer is None:  # every window from this pass's start, however long it took
                self._arm(max(now + READ_WINDOW_S, self._loop.time() + 0.001))


_passes: PerLoop[ReadPass] = PerLoop(ReadPass)


def get_read_pass() -> ReadPass:
    return _passes.get()[0]
