"""One generation = one owned task: provider -> whole words -> seq -> store and live listeners -> terminal."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from channels.db import database_sync_to_async
from django.conf import settings

from creatornexus import logcontext
from streaming import metrics, protocol, services
from streaming.chunks import Words
from streaming.lifecycle import Lifecycle, Stop
from streaming.pacer import HOLD_S
from streaming.protocol import ErrorCode, ScriptRequest
from streaming.providers.base import Provider, ProviderError, ScriptStream
from streaming.session_rows import get_session_rows
from streaming.store import StreamStore
from streaming.words import WordSplitter

logger = logging.getLogger(__name__)

SHUTDOWN_MESSAGE = "The server stopped before the script was finished; the words so far are kept."


class Listener(Protocol):
    """Something on this process that wants a session's frames as they happen (a consumer's watch).

    Every method is synchronous: a listener only queues frames, so handing a pass's words to every listener of
    every stream costs no await.
    """

    batch: bool  # takes multi-word frames ("batch": true): the runner may hold its words for one window

    def deliver_started(self, frame: str) -> None:
        """The pre-encoded stream.started frame."""

    def deliver_words(self, words: Words) -> None:
        """New consecutive words of the session."""

    def deliver_terminal(self, frame: dict[str, Any]) -> None:
        """The one terminal frame; nothing follows it."""


@dataclass(eq=False)
class LiveStream:
    """A running generation on this process: the words so far and who is listening."""

    session_id: str
    owner_id: int
    connection_id: str | None
    request: ScriptRequest
    process_id: str
    seq: int = 0
    words: list[str] = field(default_factory=list)
    listeners: set[Listener] = field(default_factory=set)
    script_id: int | None = None
    started_frame: dict[str, Any] | None = None
    life: Lifecycle = field(default_factory=Lifecycle)
    # Another process has a watcher: the registry wakes it through the channel layer once per tick.
    remote_watched: bool = False
    # The pacer holds this stream's hand-overs for multi-word frames (set when each hand-over is planned).
    held: bool = False
    woken_seq: int = 0
    task: asyncio.Task[None] | None = None
    tally: metrics.StreamTally = field(default_factory=metrics.StreamTally)
    estimated_words: int = field(init=False)

    def __post_init__(self) -> None:
        self.estimated_words = self.request.estimated_words  # once, not per word

    @property
    def terminal(self) -> dict[str, Any] | None:
        return self.life.terminal

    def stop(self, code: ErrorCode | None = None) -> bool:
        """Ask the generation to end now: cancelled (code None) or failed shutting_down. False if already ending."""
        return self._interrupt(Stop.SHUTTING_DOWN if code is ErrorCode.SHUTTING_DOWN else Stop.CANCELLED)

    def fence(self) -> bool:
        """Another process stored this session's terminal (it declared this process dead): stop, write nothing."""
        return self._interrupt(Stop.FENCED)

    def _interrupt(self, why: Stop) -> bool:
        if self.task is None or self.task.done() or not self.life.request_stop(why):
            return False
        self.task.cancel()
        return True


@dataclass
class Outcome:
    """How a generation ended, filled in as it runs."""

    status: str = "completed"
    code: ErrorCode | None = None
    message: str = ""
    usage: dict[str, Any] = field(default_factory=dict)
    stream: ScriptStream | None = None
    provider_name: str = ""
    fallback: bool = False


async def run_generation(live: LiveStream, store: StreamStore, provider: Provider, fallback: Provider | None) -> None:
    """Run one generation to its end; every exit stores and broadcasts exactly one terminal frame."""
    logcontext.bind_session(live.session_id)  # this task's lines (and those of tasks it starts) name the session
    started = time.monotonic()
    outcome = Outcome(provider_name=provider.name)
    try:
        async with asyncio.timeout(settings.STREAMING["STREAM_DEADLINE_S"]):
            used = await _open(live, store, provider, fallback, outcome)
            try:
                await _pump(live, used, outcome)
            except ProviderError as exc:
                if live.seq or outcome.fallback or fallback is None or fallback.name == used.name:
                    raise
                used = await _switch_to_fallback(live, fallback, outcome, exc)
                await _pump(live, used, outcome)
    except asyncio.CancelledError:
        # A cancel that did not come through stop() (the loop is closing) still ends the stream properly.
        live.life.request_stop(Stop.SHUTTING_DOWN)
        outcome.status, outcome.code = live.life.outcome_of_stop()
        outcome.message = SHUTDOWN_MESSAGE if outcome.code else ""
        await _finish(live, store, outcome, started)
        raise
    except TimeoutError:
        _fail(outcome, ErrorCode.AI_TIMEOUT, "The script took longer than the server's deadline allows.")
        metrics.PROVIDER_FAILURES.labels(outcome.provider_name, ErrorCode.AI_TIMEOUT.value).inc()
    except ProviderError as exc:
        _fail(outcome, exc.code, exc.message)
        metrics.PROVIDER_FAILURES.labels(outcome.provider_name, exc.code.value).inc()
    except Exception:
        logger.exception("generation %s failed", live.session_id)
        _fail(outcome, ErrorCode.INTERNAL_ERROR, "The server failed while writing the script.")
    await _finish(live, store, outcome, started)


def _fail(outcome: Outcome, code: ErrorCode, message: str) -> None:
    outcome.status, outcome.code, outcome.message = "failed", code, message


async def _open(
    live: LiveStream, store: StreamStore, provider: Provider, fallback: Provider | None, outcome: Outcome
) -> Provider:
    """Record the session, open the provider (or the fallback, before any word), announce stream.started."""
    live.script_id = await get_session_rows().create(
        services.SessionStart(
            session_id=live.session_id,
            owner_id=live.owner_id,
            connection_id=live.connection_id,
            request=live.request,
            provider=provider.name,
            model=provider.model,
            process_id=live.process_id,
        )
    )
    try:
        outcome.stream = await _timed_open(provider, live.request)
        used = provider
    except ProviderError as exc:
        if fallback is None or fallback.name == provider.name:
            raise
        used = await _switch_to_fallback(live, fallback, outcome, exc)
    await _announce(live, store, outcome)
    return used


async def _switch_to_fallback(live: LiveStream, fallback: Provider, outcome: Outcome, exc: ProviderError) -> Provider:
    """The provider failed before any word: the fallback writes the whole script instead (never a mix)."""
    logger.warning(
        "provider failed before the first word of %s (%s); using %s", live.session_id, exc.code, fallback.name
    )
    if outcome.stream is not None:
        await outcome.stream.aclose()
    await database_sync_to_async(services.session_provider_switch)(
        session_id=live.session_id, provider=fallback.name, model=fallback.model
    )
    metrics.PROVIDER_FAILURES.labels(outcome.provider_name, exc.code.value).inc()
    outcome.provider_name, outcome.fallback = fallback.name, True
    outcome.stream = await _timed_open(fallback, live.request)
    return fallback


async def _timed_open(provider: Provider, request: ScriptRequest) -> ScriptStream:
    """provider.open(), its latency measured when it succeeds (failures are counted by code where handled)."""
    started = time.monotonic()
    stream = await provider.open(request)
    metrics.PROVIDER_LATENCY.labels(provider.name).observe(time.monotonic() - started)
    return stream


async def _announce(live: LiveStream, store: StreamStore, outcome: Outcome) -> None:
    """Store the session and send stream.started, once, before any other frame of it."""
    if live.started_frame is not None:
        return
    live.started_frame = protocol.stream_started(
        live.request.request_id, live.session_id, live.estimated_words, outcome.provider_name, fallback=outcome.fallback
    )
    logger.info("stream started: %s, about %d words", outcome.provider_name, live.estimated_words)
    try:
        await store.open_session(live.session_id, live.owner_id, live.process_id, live.estimated_words, live.words)
    except Exception:
        # The store is down: this process's listeners still get every word; the store catches up when it is back.
        logger.exception("storing the start of %s failed", live.session_id)
    frame = protocol.encode(live.started_frame)
    for listener in tuple(live.listeners):
        try:
            listener.deliver_started(frame)
        except Exception:
            live.listeners.discard(listener)


async def _pump(live: LiveStream, provider: Provider, outcome: Outcome) -> None:
    """Feed the provider's words to the stream: pushed in batches (the mock, on the pacer), text pushed as it
    arrives, or delta by delta."""
    stream = outcome.stream
    assert stream is not None
    push = getattr(stream, "push", None)
    if push is not None:
        await push(lambda words: emit_words(live, words, held=live.held), lambda: _hold_s(live))
    elif provider.whole_words:
        async for word in stream:
            emit_words(live, [word])
    else:
        splitter = WordSplitter()

        def take(delta: str) -> None:
            if words := splitter.feed(delta):
                emit_words(live, words)

        # Text pushed as it arrives (the OpenAI provider on the lean transport), or read delta by delta. While
        # every listener takes multi-word frames, the body is read a window at a time by the loop's read pass:
        # those words were held already and go out at once, as the pacer's do.
        push_text = getattr(stream, "push_text", None)
        if push_text is not None:
            pushing: Any = stream  # a pushing stream tells whether the read pass read the text it hands over

            def take_pushed(delta: str) -> None:
                if words := splitter.feed(delta):
                    emit_words(live, words, held=pushing.read_by_pass)

            await push_text(take_pushed, lambda: _hold_s(live) > 0)
        else:
            async for delta in stream:
                take(delta)
        if words := splitter.flush():
            emit_words(live, words)
    outcome.usage = dict(stream.usage)


def _hold_s(live: LiveStream) -> float:
    """How long the pacer holds this stream's next words: one multi-word window while every listener here
    asked for multi-word frames and no other process watches (it may serve a client that did not), else 0.

    Holding once per stream replaces a hold per watch: one hand-over, one Words and one frame build per window.
    """
    held = not live.remote_watched
    for listener in live.listeners:  # once per hand-over: a loop, not a generator
        if not listener.batch:
            held = False
            break
    live.held = held
    return HOLD_S if held else 0.0


def emit_words(live: LiveStream, words: list[str], *, held: bool = False) -> None:
    """The hot path, once per batch of words: number them, keep them (the store reads this list when it
    flushes), hand them to every live listener. No await: nothing can come between two batches.

    `held`: the pacer already held these words for one multi-word window; watches send them as they come."""
    if live.life.stop is not None:
        return  # stopped (cancel, shutdown, fenced): its terminal is on its way, no word may follow
    first = live.seq + 1
    live.seq += len(words)
    live.words += words
    if live.listeners:
        batch = Words(live.session_id, first, words, live.estimated_words, held=held)
        failed: list[Listener] | None = None  # made only when a listener fails
        for listener in live.listeners:  # delivering never adds or removes a listener
            try:
                listener.deliver_words(batch)
            except Exception:
                failed = failed or []
                failed.append(listener)
        if failed:  # a listener whose socket went away stops listening; the stream goes on
            live.listeners.difference_update(failed)


async def _finish(live: LiveStream, store: StreamStore, outcome: Outcome, started: float) -> None:
    """Close the upstream, settle the one terminal frame (store first, then the row), broadcast it once."""
    live.life.begin_finishing()  # from here on, a cancel or a second stop changes nothing
    if outcome.stream is not None:
        try:
            await outcome.stream.aclose()
        except Exception:
            logger.warning("closing the provider stream of %s failed", live.session_id, exc_info=True)
    elapsed_ms = int((time.monotonic() - started) * 1000)
    ours = _terminal_frame(live, outcome, elapsed_ms)
    stored_first = await _store_terminal(live, store, outcome, ours)
    terminal = live.life.settle(ours, stored_first)
    owned = live.life.owns_end
    metrics.stream_ended(live.tally, live.seq, outcome.status if owned else None, outcome.code if owned else None)
    logger.info("stream ended: %s after %d words in %d ms", _code(terminal), live.seq, elapsed_ms)
    if owned:
        await _save(live, outcome, elapsed_ms)
    else:
        logger.warning(
            "session %s was ended by another process (%s); not overwriting it", live.session_id, _code(terminal)
        )
    listeners = tuple(live.listeners)
    live.listeners.clear()
    for listener in listeners:
        try:
            listener.deliver_terminal(terminal)
        except Exception:
            logger.debug("listener of %s went away before the terminal frame", live.session_id)


async def _store_terminal(
    live: LiveStream, store: StreamStore, outcome: Outcome, ours: dict[str, Any]
) -> dict[str, Any] | None:
    """Store our terminal unless one is stored already; that one (which wins), or None when ours was taken."""
    try:
        if live.life.stop is Stop.FENCED:
            state = await store.read(live.session_id, live.seq)
            return state.terminal if state is not None and state.terminal is not None else ours
        await _announce(live, store, outcome)
        return await store.close_session(live.session_id, ours, settings.STREAMING["STREAM_RETENTION_S"])
    except Exception:
        # The store is down: it retries the write each tick; this process's listeners get the frame now.
        logger.exception("storing the end of %s failed; live listeners still get it", live.session_id)
        return None


async def _save(live: LiveStream, outcome: Outcome, elapsed_ms: int) -> None:
    try:
        await get_session_rows().finish(
            services.SessionEnd(
                session_id=live.session_id,
                status=outcome.status,
                script="".join(live.words),
                words=live.seq,
                usage=outcome.usage,
                elapsed_ms=elapsed_ms,
                error_code=outcome.code.value if outcome.code else "",
                error_message=outcome.message,
            )
        )
    except Exception:
        logger.exception("saving the end of %s failed", live.session_id)


def _code(terminal: dict[str, Any]) -> str:
    return str(terminal.get("error", {}).get("code") or terminal.get("type"))


def _terminal_frame(live: LiveStream, outcome: Outcome, elapsed_ms: int) -> dict[str, Any]:
    if outcome.status == "completed":
        return protocol.stream_completed(
            live.session_id, live.script_id, live.seq, elapsed_ms, outcome.usage, fallback=outcome.fallback
        )
    if outcome.status == "cancelled":
        return protocol.stream_cancelled(live.session_id, live.seq)
    return protocol.stream_failed(live.session_id, live.seq, outcome.code or ErrorCode.INTERNAL_ERROR, outcome.message)
