"""SIGTERM/SIGINT drain this process before the server stops it (docs/deploy.md, "Rolling deploys").

Neither Daphne nor uvicorn (`--lifespan off`) tells an ASGI app that it is about to stop: Daphne cancels every
app instance at once, uvicorn closes every socket itself. So on the application's first call, in the main
thread and inside the running loop, `SignalDrain` puts its own handler in front of the server's for SIGTERM
and SIGINT. The first signal runs the registry's drain on the loop and then hands the same signal to the
server's handler, so the server stops exactly as it normally does; a second signal hands it over at once
(forced stop). Signals the server does not handle (SIG_DFL, SIG_IGN) are left alone: where nothing owns them
(the in-process test client), the process is not ours to manage.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)
Handler = Callable[[int, FrameType | None], Any] | int | None
ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class SignalDrain:
    """Owns SIGTERM/SIGINT for one process: the first signal drains, then goes on to the server's handler."""

    def __init__(self, drain: Callable[[], Awaitable[None]]) -> None:
        self._drain = drain
        self._previous: dict[int, Handler] = {}
        # Handlers the server registered on the loop (loop.add_signal_handler: granian's worker), set aside.
        self._loop_previous: dict[int, asyncio.Handle] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._signalled: int | None = None
        self._handed_over = False
        self.task: asyncio.Task[None] | None = None

    @property
    def installed(self) -> bool:
        return self._loop is not None

    def install(self) -> bool:
        """From the running loop in the main thread: wrap the server's handlers. False when there is none."""
        if self._loop is not None:
            return True
        if threading.current_thread() is not threading.main_thread():
            # Under runserver's autoreloader the server runs in a side thread; signals belong to the reloader.
            return False
        owned = {sig: signal.getsignal(sig) for sig in SIGNALS if callable(signal.getsignal(sig))}
        if signal.SIGTERM not in owned:
            return False
        self._loop = asyncio.get_running_loop()
        for sig, handler in owned.items():
            self._previous[sig] = handler
            signal.signal(sig, self._on_signal)
        self._take_loop_handlers(self._loop)
        return True

    def _take_loop_handlers(self, loop: asyncio.AbstractEventLoop) -> None:
        """granian's worker takes SIGTERM/SIGINT through loop.add_signal_handler (the loop's wake-up fd), which
        a Python-level handler does not stop: its callbacks are set aside too, so the drain runs first."""
        registered: dict[int, asyncio.Handle] = getattr(loop, "_signal_handlers", None) or {}
        for sig in SIGNALS:
            handle = registered.get(sig)
            if handle is not None:
                self._loop_previous[sig] = handle
                self._previous.pop(sig, None)  # the loop's no-op Python handler is re-set by add_signal_handler
                loop.add_signal_handler(sig, self._on_signal, sig, None)

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        """In the main thread between two bytecodes: only schedule work on the loop, or hand over."""
        assert self._loop is not None
        if self._signalled is not None:
            logger.warning("%s during the drain: stopping now", signal.Signals(sig).name)
            self._hand_over(sig)
            return
        if self._loop.is_closed():
            self._hand_over(sig)
            return
        self._signalled = sig
        # The signal lands in whatever code runs now (often a socket's task): the drain must not log as that
        # socket and its user, so it starts in a context of its own.
        self._loop.call_soon_threadsafe(self._start, sig, context=contextvars.Context())

    def _start(self, sig: int) -> None:
        if self._handed_over:  # a second signal came before the loop got here: the server is stopping already
            return
        self.task = asyncio.get_running_loop().create_task(self._run(sig), name="drain")

    async def _run(self, sig: int) -> None:
        logger.info("%s received: draining before the server stops", signal.Signals(sig).name)
        try:
            await self._drain()
        except Exception:
            logger.exception("the drain failed; stopping anyway")
        finally:
            self._hand_over(sig)

    def _hand_over(self, sig: int) -> None:
        """Give the signals back to the server and deliver this one to it, as if it had just arrived."""
        if self._handed_over:
            return
        self._handed_over = True
        for known, handler in self._previous.items():
            signal.signal(known, handler)
        if self._loop is not None and not self._loop.is_closed():
            for known, handle in self._loop_previous.items():
                # asyncio's Handle keeps the callback it was registered with (not in typeshed).
                self._loop.add_signal_handler(known, handle._callback, *handle._args)  # type: ignore[attr-defined]
        signal.raise_signal(sig)


async def drain_registry() -> None:
    """The drain of this process: its registry stops taking work, lets streams end, leaves the cluster."""
    from streaming.registry import get_registry

    registry = await get_registry()
    await registry.drain(settings.STREAMING["SHUTDOWN_GRACE_S"])


_process_drain = SignalDrain(drain_registry)


def on_signals(app: ASGIApp) -> ASGIApp:
    """Wrap the ASGI application: its first call, in the server's loop, takes over SIGTERM/SIGINT and starts
    the process's registry, so heartbeats and sweeps (rows a crashed predecessor left) run from the start."""

    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not _process_drain.installed and _process_drain.install():
            from streaming.registry import get_registry

            await get_registry()
        await app(scope, receive, send)

    return application
