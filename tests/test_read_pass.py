"""The read pass without HTTP: which sockets it reads, and that one reader's failure is its own."""

from __future__ import annotations

import asyncio
import resource
import socket
from collections.abc import Iterator

import pytest

from streaming.providers import read_pass
from streaming.providers.read_pass import ReadPass

TIMEOUT_S = 5


class Reader:
    """Reads its end of a socket pair when the pass says so; `boom` makes it fail instead."""

    def __init__(self, sock: socket.socket, *, boom: bool = False) -> None:
        self.sock = sock
        self.boom = boom
        self.got = b""
        self.aborted = False
        self.read = asyncio.Event()

    def read_ready(self) -> None:
        if self.boom:
            raise RuntimeError("a parser bug")
        self.got += self.sock.recv(65536)
        self.read.set()

    def abort(self) -> None:
        self.aborted = True


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made: list[tuple[socket.socket, socket.socket]] = []
    yield made
    for ours, theirs in made:
        ours.close()
        theirs.close()


def pair(made: list[tuple[socket.socket, socket.socket]]) -> tuple[socket.socket, socket.socket]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    made.append((ours, theirs))
    return ours, theirs


async def test_only_sockets_with_bytes_are_read_and_all_of_them_in_one_pass(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    """More ready sockets than epoll's default of 1,023 events: every one is read in the same pass."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4000 <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (4000, hard))
    readers = []
    the_pass = ReadPass()
    for _ in range(1100):
        ours, _theirs = pair(pairs)
        readers.append(Reader(ours))
        the_pass.add(ours.fileno(), readers[-1])
    quiet = readers[-1]
    for number, (_ours, theirs) in enumerate(pairs[:-1]):
        theirs.send(b"%d " % number)
    async with asyncio.timeout(TIMEOUT_S):
        await readers[0].read.wait()
    assert [reader.got for reader in readers[:-1]] == [b"%d " % n for n in range(1099)]
    assert quiet.got == b"" and not quiet.read.is_set()
    for reader in readers:
        the_pass.remove(reader.sock.fileno(), reader)


async def test_one_readers_failure_is_its_own(pairs: list[tuple[socket.socket, socket.socket]]) -> None:
    """A reader that raises is dropped and aborted; the others are read in this pass and the next ones."""
    the_pass = ReadPass()
    (bad_ours, bad_theirs), (good_ours, good_theirs) = pair(pairs), pair(pairs)
    bad, good = Reader(bad_ours, boom=True), Reader(good_ours)
    the_pass.add(bad_ours.fileno(), bad)
    the_pass.add(good_ours.fileno(), good)
    bad_theirs.send(b"x")
    good_theirs.send(b"first ")
    async with asyncio.timeout(TIMEOUT_S):
        await good.read.wait()
    assert bad.aborted
    good.read.clear()
    good_theirs.send(b"second")
    async with asyncio.timeout(TIMEOUT_S):
        await good.read.wait()
    assert good.got == b"first second"
    the_pass.remove(good_ours.fileno(), good)


async def test_a_socket_number_is_only_forgotten_for_its_own_reader(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    """A connection leaving late (its number already another's, as under uvloop) leaves the other's alone."""
    the_pass = ReadPass()
    ours, theirs = pair(pairs)
    stale, current = Reader(ours), Reader(ours)
    the_pass.add(ours.fileno(), current)
    the_pass.remove(ours.fileno(), stale)
    theirs.send(b"still read")
    async with asyncio.timeout(TIMEOUT_S):
        await current.read.wait()
    assert current.got == b"still read"
    the_pass.remove(ours.fileno(), current)


def test_available_on_linux() -> None:
    assert read_pass.available()
