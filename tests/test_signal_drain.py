"""SignalDrain without a server: real signals to this process, a stand-in for the server's own handlers."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from types import FrameType

import pytest

from creatornexus import logcontext
from streaming.drain import SIGNALS, SignalDrain


class Gate:
    """A drain that runs until the test lets it end."""

    def __init__(self, error: Exception | None = None) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.error = error

    async def drain(self) -> None:
        self.started.set()
        await self.release.wait()
        if self.error is not None:
            raise self.error


@pytest.fixture
def server_got() -> Iterator[list[int]]:
    """Handlers like the ones Daphne (Twisted) and uvicorn install: they record what reached them."""
    received: list[int] = []

    def server_handler(sig: int, frame: FrameType | None) -> None:
        received.append(sig)

    before = {sig: signal.signal(sig, server_handler) for sig in SIGNALS}
    yield received
    for sig, handler in before.items():
        signal.signal(sig, handler)


async def drained(gate: Gate, drain: SignalDrain) -> None:
    gate.release.set()
    assert drain.task is not None
    await asyncio.wait_for(drain.task, 1)


async def test_first_signal_drains_then_reaches_the_server(server_got: list[int]) -> None:
    """SIGTERM: the drain runs while the server hears nothing; once it is done, the server gets that SIGTERM."""
    gate = Gate()
    drain = SignalDrain(gate.drain)
    assert drain.install()
    signal.raise_signal(signal.SIGTERM)
    await asyncio.wait_for(gate.started.wait(), 1)
    assert server_got == []
    await drained(gate, drain)
    assert server_got == [signal.SIGTERM]


async def test_the_drain_does_not_log_as_the_socket_the_signal_interrupted(server_got: list[int]) -> None:
    """The signal lands in whatever runs (here a task bound to a socket and user): the drain's lines name no one."""
    seen: list[tuple[str | None, int | None]] = []

    ran = asyncio.Event()

    async def drain() -> None:
        seen.append((logcontext.connection_id.get(), logcontext.user_id.get()))
        ran.set()

    signal_drain = SignalDrain(drain)
    signal_drain.install()

    async def socket_task() -> None:
        logcontext.bind_connection("a-socket", 42)
        signal.raise_signal(signal.SIGTERM)  # handled right here, between two bytecodes of this task

    await asyncio.create_task(socket_task())
    await asyncio.wait_for(ran.wait(), 1)
    assert signal_drain.task is not None
    await asyncio.wait_for(signal_drain.task, 1)
    assert seen == [(None, None)]
    assert server_got == [signal.SIGTERM]


async def test_server_handlers_are_back_after_the_hand_over(server_got: list[int]) -> None:
    """After the drain the server's own handlers are installed again: a later signal goes straight to it."""
    gate = Gate()
    drain = SignalDrain(gate.drain)
    drain.install()
    signal.raise_signal(signal.SIGINT)
    await asyncio.wait_for(gate.started.wait(), 1)
    await drained(gate, drain)
    signal.raise_signal(signal.SIGTERM)
    assert server_got == [signal.SIGINT, signal.SIGTERM]


async def test_second_signal_stops_at_once(server_got: list[int]) -> None:
    """A second signal during the drain reaches the server at once (forced stop), and only once."""
    gate = Gate()
    drain = SignalDrain(gate.drain)
    drain.install()
    signal.raise_signal(signal.SIGTERM)
    await asyncio.wait_for(gate.started.wait(), 1)
    signal.raise_signal(signal.SIGINT)
    assert server_got == [signal.SIGINT]
    await drained(gate, drain)
    assert server_got == [signal.SIGINT]


async def test_failed_drain_still_stops_the_server(server_got: list[int], caplog: pytest.LogCaptureFixture) -> None:
    """A drain that raises is logged, and the server still gets its signal."""
    gate = Gate(RuntimeError("store gone"))
    drain = SignalDrain(gate.drain)
    drain.install()
    signal.raise_signal(signal.SIGTERM)
    await asyncio.wait_for(gate.started.wait(), 1)
    await drained(gate, drain)
    assert server_got == [signal.SIGTERM]
    assert "the drain failed" in caplog.text


async def test_no_server_handler_means_no_drain() -> None:
    """Where nothing handles SIGTERM (the in-process test client) the process's signals are left alone."""
    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        assert not SignalDrain(Gate().drain).install()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, before)


async def test_not_installed_outside_the_main_thread(server_got: list[int]) -> None:
    """runserver's autoreloader runs the server in a side thread: signals cannot be taken there."""

    async def install() -> bool:
        return SignalDrain(Gate().drain).install()

    assert not await asyncio.to_thread(asyncio.run, install())
