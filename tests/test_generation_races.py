"""A generation's races, driven step by step through the real runner with a store and provider we hold still.

Each ends with exactly one terminal frame: stored once, delivered once to every listener, the row saved once
(or not at all by an owner whose session another process ended first).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from streaming import services
from streaming.chunks import Words
from streaming.lifecycle import Phase
from streaming.protocol import ErrorCode, Platform, ScriptRequest
from streaming.providers.base import ProviderError
from streaming.runner import LiveStream, run_generation
from streaming.store.memory import MemoryStore
from streaming.sweeps import fail_lost_session

TIMEOUT_S = 5


class HeldStore(MemoryStore):
    """The memory store whose terminal write waits until the test lets it go (a slow Redis)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.release.set()
        self.closing = asyncio.Event()
        self.closes: list[dict[str, Any]] = []

    async def close_session(self, session_id: str, terminal: dict[str, Any], retention_s: int) -> Any:
        self.closes.append(terminal)
        self.closing.set()
        await self.release.wait()
        return await super().close_session(session_id, terminal, retention_s)


class StepStream:
    """Yields what the test puts in its queue: a word, an exception to raise, or None to end."""

    def __init__(self, provider: StepProvider) -> None:
        self.provider = provider
        self.usage: dict[str, Any] = {}

    def __aiter__(self) -> AsyncIterator[str]:
        return self._words()

    async def _words(self) -> AsyncIterator[str]:
        while True:
            item = await self.provider.queue.get()
            if item is None:
                return
            if isinstance(item, Exception):
                raise item
            self.provider.sent.set()
            yield item

    async def aclose(self) -> None:
        self.provider.closed += 1
        if self.provider.close_error is not None:
            raise self.provider.close_error


class StepProvider:
    name = "step"
    model = "step-1"
    whole_words = True

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.sent = asyncio.Event()
        self.closed = 0
        self.close_error: Exception | None = None

    async def open(self, request: ScriptRequest) -> StepStream:
        return StepStream(self)

    def describe(self) -> dict[str, Any]:
        return {}


class Recorder:
    """A listener on this process: every frame it was handed."""

    def __init__(self) -> None:
        self.chunks: list[int] = []
        self.terminals: list[dict[str, Any]] = []

    def deliver_started(self, frame: str) -> None:
        pass

    def deliver_words(self, words: Words) -> None:
        self.chunks.extend(range(words.first_seq, words.last_seq + 1))

    def deliver_terminal(self, frame: dict[str, Any]) -> None:
        self.terminals.append(frame)


@pytest.fixture
def rows(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Row writes, counted instead of sent to the database."""
    finished: list[dict[str, Any]] = []

    def record(*, starts: list[services.SessionStart], ends: list[services.SessionEnd]) -> list[int]:
        finished.extend(dataclasses.asdict(end) for end in ends)
        return [1] * len(starts)

    monkeypatch.setattr(services, "sessions_record", record)  # the runner's rows, batched
    monkeypatch.setattr(services, "session_finish", lambda **kw: finished.append(kw))  # a sweep's, one at a time
    yield finished


def start(store: MemoryStore, provider: StepProvider) -> tuple[LiveStream, Recorder]:
    request = ScriptRequest(topic="coffee", platform=Platform.TIKTOK, duration=30)
    live = LiveStream("s-1", 1, None, request, "proc-a")
    listener = Recorder()
    live.listeners.add(listener)
    live.task = asyncio.create_task(run_generation(live, store, provider, None))  # type: ignore[arg-type]
    return live, listener


async def send_words(provider: StepProvider, *words: str) -> None:
    for word in words:
        provider.sent.clear()
        provider.queue.put_nowait(word)
        async with asyncio.timeout(TIMEOUT_S):
            await provider.sent.wait()


async def ended(live: LiveStream) -> None:
    assert live.task is not None
    async with asyncio.timeout(TIMEOUT_S):
        await asyncio.gather(live.task, return_exceptions=True)


async def test_second_cancel_while_the_first_is_finishing(rows: list[dict[str, Any]]) -> None:
    store, provider = HeldStore(), StepProvider()
    live, listener = start(store, provider)
    await send_words(provider, "a ", "b ")
    store.release.clear()
    assert live.stop() is True
    async with asyncio.timeout(TIMEOUT_S):
        await store.closing.wait()
    assert live.life.phase is Phase.FINISHING
    assert live.stop() is False  # the second cancel: no second interruption of the finish
    store.release.set()
    await ended(live)
    assert [t["type"] for t in listener.terminals] == ["stream.cancelled"]
    assert listener.terminals[0]["seq"] == 2
    assert len(store.closes) == 1 and (await store.read("s-1", 0)).terminal == listener.terminals[0]  # type: ignore[union-attr]
    assert [r["status"] for r in rows] == ["cancelled"] and rows[0]["script"] == "a b "


async def test_cancel_after_the_provider_finished_changes_nothing(rows: list[dict[str, Any]]) -> None:
    store, provider = HeldStore(), StepProvider()
    live, listener = start(store, provider)
    await send_words(provider, "a ")
    store.release.clear()
    provider.queue.put_nowait(None)  # the provider is done: finishing
    async with asyncio.timeout(TIMEOUT_S):
        await store.closing.wait()
    assert live.stop() is False
    store.release.set()
    await ended(live)
    assert [t["type"] for t in listener.terminals] == ["stream.completed"]
    assert [r["status"] for r in rows] == ["completed"]
    assert len(store.closes) == 1


async def test_listener_added_while_finishing_gets_the_terminal_once(rows: list[dict[str, Any]]) -> None:
    store, provider = HeldStore(), StepProvider()
    live, first = start(store, provider)
    await send_words(provider, "a ", "b ", "c ")
    store.release.clear()
    provider.queue.put_nowait(None)
    async with asyncio.timeout(TIMEOUT_S):
        await store.closing.wait()
    late = Recorder()
    assert live.life.accepts_listeners
    live.listeners.add(late)  # what a resume does while the generation is finishing
    store.release.set()
    await ended(live)
    assert first.terminals == late.terminals and len(late.terminals) == 1
    assert live.life.accepts_listeners is False


async def test_sweep_racing_a_slow_owner(rows: list[dict[str, Any]]) -> None:
    """Another process ends the session as worker_lost first; the owner adopts that end and saves nothing."""
    store, provider = HeldStore(), StepProvider()
    live, listener = start(store, provider)
    await send_words(provider, "a ", "b ")
    await fail_lost_session(store, "s-1")  # the sweep of a process that thought the owner dead
    assert [r["error_code"] for r in rows] == ["worker_lost"]
    provider.queue.put_nowait(None)  # the slow owner finishes after all
    await ended(live)
    assert [t["error"]["code"] for t in listener.terminals] == ["worker_lost"]
    assert len(rows) == 1  # the sweep's row only: the owner did not overwrite it
    assert (await store.read("s-1", 0)).terminal == listener.terminals[0]  # type: ignore[union-attr]


async def test_fenced_owner_stops_at_once_and_writes_nothing(rows: list[dict[str, Any]]) -> None:
    store, provider = HeldStore(), StepProvider()
    live, listener = start(store, provider)
    await send_words(provider, "a ", "b ")
    await fail_lost_session(store, "s-1")
    assert live.fence() is True  # what the control loop does when it sees the stored terminal
    await ended(live)
    assert provider.closed == 1
    assert [t["error"]["code"] for t in listener.terminals] == ["worker_lost"]
    assert len(rows) == 1 and len(store.closes) == 1  # the sweep's only


async def test_provider_error_on_close_during_cancel(rows: list[dict[str, Any]]) -> None:
    store, provider = HeldStore(), StepProvider()
    provider.close_error = ProviderError(ErrorCode.AI_UNAVAILABLE, "upstream broke while closing")
    live, listener = start(store, provider)
    await send_words(provider, "a ")
    assert live.stop() is True
    await ended(live)
    assert [t["type"] for t in listener.terminals] == ["stream.cancelled"]
    assert [r["status"] for r in rows] == ["cancelled"] and len(store.closes) == 1


async def test_provider_error_then_cancel_while_failing(rows: list[dict[str, Any]]) -> None:
    """The provider fails; a cancel lands while the failure is being stored: one stream.failed, nothing else."""
    store, provider = HeldStore(), StepProvider()
    live, listener = start(store, provider)
    await send_words(provider, "a ")
    store.release.clear()
    provider.queue.put_nowait(ProviderError(ErrorCode.AI_UNAVAILABLE, "upstream went away"))
    async with asyncio.timeout(TIMEOUT_S):
        await store.closing.wait()
    assert live.stop() is False
    store.release.set()
    await ended(live)
    assert [t["error"]["code"] for t in listener.terminals] == ["ai_unavailable"]
    assert [r["error_code"] for r in rows] == ["ai_unavailable"] and len(store.closes) == 1


async def test_shutdown_stop_fails_with_shutting_down_and_keeps_the_words(rows: list[dict[str, Any]]) -> None:
    store, provider = HeldStore(), StepProvider()
    live, listener = start(store, provider)
    await send_words(provider, "a ", "b ", "c ")
    assert live.stop(ErrorCode.SHUTTING_DOWN) is True
    await ended(live)
    assert [t["error"]["code"] for t in listener.terminals] == ["shutting_down"]
    assert listener.terminals[0]["seq"] == 3
    assert rows[0]["script"] == "a b c " and rows[0]["status"] == "failed"
