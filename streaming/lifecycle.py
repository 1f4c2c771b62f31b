"""A generation's life as a small state machine, free of I/O: running -> finishing -> ended.

The runner does the I/O (provider, store, database, sockets) and asks this machine what it may do, so every
interleaving of cancels, resumes, sweeps and provider errors can be tested step by step without timing:
- a stop (cancel, shutdown, fencing) interrupts the task only while it runs; every later one is a no-op;
- the terminal frame is settled once: ours when the store took it, otherwise the one another process stored
  first (a worker_lost sweep that raced a slow owner), and then the saved row is not ours to write;
- listeners that attach before the end get the terminal in the one broadcast; those that come after it get it
  from the settled frame directly, so each gets it exactly once.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from streaming.protocol import ErrorCode


class Phase(Enum):
    RUNNING = "running"
    FINISHING = "finishing"  # the provider is closed, the terminal is being stored and saved
    ENDED = "ended"  # the terminal frame is settled; nothing more happens to this generation


class Stop(Enum):
    """Why a running generation was asked to end before its provider finished."""

    CANCELLED = "cancelled"  # its user asked, from any tab or process
    SHUTTING_DOWN = "shutting_down"  # this process drains and the grace period passed
    FENCED = "fenced"  # another process already stored its terminal (worker_lost): stop, write nothing


class Lifecycle:
    """One generation's phase, why it stops, and its one terminal frame."""

    def __init__(self) -> None:
        self.phase = Phase.RUNNING
        self.stop: Stop | None = None
        self.terminal: dict[str, Any] | None = None
        self.owns_end = True  # False once another process's terminal won: no row write, no store write

    def request_stop(self, why: Stop) -> bool:
        """A stop while running interrupts the generation (True); any later stop or one past running does nothing."""
        if self.phase is not Phase.RUNNING or self.stop is not None:
            return False
        self.stop = why
        return True

    def begin_finishing(self) -> bool:
        """The generation leaves its provider loop; False if it already did (a finish never starts twice)."""
        if self.phase is not Phase.RUNNING:
            return False
        self.phase = Phase.FINISHING
        return True

    def outcome_of_stop(self) -> tuple[str, ErrorCode | None]:
        """(status, error code) of a generation that ended because it was stopped."""
        if self.stop is Stop.SHUTTING_DOWN:
            return "failed", ErrorCode.SHUTTING_DOWN
        return "cancelled", None

    def settle(self, ours: dict[str, Any], stored_first: dict[str, Any] | None) -> dict[str, Any]:
        """Fix the one terminal frame: ours, unless the store already held another one (first write wins)."""
        if self.phase is Phase.ENDED:
            assert self.terminal is not None
            return self.terminal
        if self.phase is Phase.RUNNING:
            raise RuntimeError("a generation settles its terminal only while finishing")
        if stored_first is not None and stored_first != ours:
            self.owns_end = False
            self.terminal = stored_first
        else:
            self.terminal = ours
        self.phase = Phase.ENDED
        return self.terminal

    @property
    def accepts_listeners(self) -> bool:
        """A listener added now still gets the terminal in the broadcast."""
        return self.phase is not Phase.ENDED
