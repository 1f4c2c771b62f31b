"""One pacer per event loop: every paced stream's due words and every held multi-word frame, in one pass.

A timer per word costs a timer handle, a task step and a generator resume for each word of each stream: at
2,000 streams of 40 words a second that is 80,000 wake-ups a second. The pacer keeps one timer for the process
instead. Each pass hands every stream all of its words whose due time (start + seq x delay) has come, in one
synchronous call, and releases every multi-word frame whose hold window is over. Passes are 1 to 5 ms apart
(as long as the last pass took), so under load one pass serves hundreds of streams, while an idle process still
wakes at the exact due time of its next word. Lateness is measured against each word's own due time, as before.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
from collections import deque
from collections.abc import Callable, Sequence

from streaming.perloop import PerLoop

logger = logging.getLogger(__name__)

# The least time between two passes: words due within it go out together. As long as the last pass took,
# from 0.5 to 5 ms: while passes are cheap a word is late by well under a millisecond (p99 at 200 one-word
# streams, uvicorn: 6.2 ms with a fixed 5 ms, 2.7 ms with this; the bare consumer's own timers 1.4 ms); under
# load a pass serves hundreds of streams instead of the loop spending itself on passes (at 5 ms, 80,000 timer
# wake-ups a second become 200 passes).
MIN_PASS_SPACING_S = 0.0005
PASS_SPACING_S = 0.005
# How long a multi-word frame holds its first word; it goes out at the first pass after that, so within
# HOLD_S + PASS_SPACING_S = 40 ms on a loop that keeps up (the window Ably uses to roll token appends).
HOLD_S = 0.035

Sink = Callable[[list[str]], None]
# Asked each time a stream's next hand-over is planned: how long to hold it (HOLD_S while every listener of the
# stream takes multi-word frames, else 0).
Hold = Callable[[], float]


class Paced:
    """One stream's words on the pacer's schedule; `done` resolves once the last one was handed over."""

    __slots__ = ("closed", "delay_s", "done", "hold", "sent", "sink", "start", "words")

    def __init__(
        self,
        words: Sequence[str],
        delay_s: float,
        sink: Sink,
        start: float,
        done: asyncio.Future[None],
        *,
        hold: Hold | None = None,
    ) -> None:
        # A tuple of strings is left out of garbage collections once the collector has seen it: 2,000 scripts
        # of 200 words would otherwise be 400,000 references every full collection follows.
        self.words = tuple(words)
        self.delay_s = delay_s
        self.sink = sink
        self.start = start
        self.sent = 0
        self.done = done
        self.closed = False
        self.hold = hold

    def close(self) -> None:
        """Hand over nothing more (the stream was closed or its generation stopped)."""
        self.closed = True

    def due_count(self, now: float) -> int:
        """How many words are due by `now`: word k (from 1) is due at start + k x delay."""
        if self.delay_s <= 0:
            return len(self.words)
        return min(len(self.words), math.floor((now - self.start) / self.delay_s + 1e-9))

    def next_due(self) -> float:
        return self.start + (self.sent + 1) * self.delay_s

    def next_hand_over(self) -> float:
        """When to hand over next: the next word's due time, plus the hold while one is asked for.

        A held hand-over takes every word that fell due meanwhile, so the stream's multi-word frame is built
        once here instead of word by word in each watch. Never past the last word's due time: the script's end
        and its terminal frame are not held.
        """
        due = self.next_due()
        if self.hold is None:
            return due
        hold = self.hold()
        if hold <= 0:
            return due
        return min(due + hold, self.start + len(self.words) * self.delay_s)


class Pacer:
    """The process's one clock for words and held frames: a timer handle, never a task per stream."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._due: list[tuple[float, int, Paced]] = []  # heap by next due time
        self._holds: deque[tuple[float, Callable[[], None]]] = deque()  # FIFO = deadline order (one window)
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._last_pass = -math.inf
        self._spacing = MIN_PASS_SPACING_S
        self._passing = False  # inside _pass, which arms the timer once at its end
        self.closed = False

    def pace(self, words: Sequence[str], delay_s: float, sink: Sink, hold: Hold | None = None) -> Paced:
        """Hand `words` to `sink` as each falls due, from now on; await the result's `done`.

        With `hold`, each hand-over waits that long past its first word's due time (see Paced.next_hand_over).
        """
        now = self._loop.time()
        paced = Paced(words, delay_s, sink, now, self._loop.create_future(), hold=hold)
        if not words:
            paced.done.set_result(None)
            return paced
        self._push(paced)
        return paced

    def hold(self, release: Callable[[], None]) -> None:
        """Call `release` at the first pass HOLD_S from now (a multi-word frame's window ends)."""
        deadline = self._loop.time() + HOLD_S
        self._holds.append((deadline, release))
        if not self._passing:
            self._arm(deadline)

    def close(self) -> None:
        """Stop the clock (the loop's registry closes): pending streams end with CancelledError."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        for _due, _order, paced in self._due:
            if not paced.done.done():
                paced.done.cancel()
        self._due.clear()
        self._holds.clear()

    def _push(self, paced: Paced) -> None:
        due = paced.next_hand_over()
        heapq.heappush(self._due, (due, next(self._order), paced))
        if not self._passing:
            self._arm(due)

    def _arm(self, when: float) -> None:
        if self.closed:
            return
        when = max(when, self._last_pass + self._spacing)
        if when >= self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._pass)

    def _pass(self) -> None:
        """Every due word of every stream, then every frame whose hold is over; then the next wake-up."""
        now = self._loop.time()
        self._timer, self._timer_at, self._last_pass = None, math.inf, now
        due = self._due
        ready: list[Paced] = []
        while due and due[0][0] <= now:
            ready.append(heapq.heappop(due)[2])
        self._passing = True
        try:
            for paced in ready:
                self._deliver(paced, now)
            holds = self._holds
            while holds and holds[0][0] <= now:
                release = holds.popleft()[1]
                try:
                    release()
                except Exception:
                    logger.exception("releasing a held frame failed")
        finally:
            self._passing = False
        self._spacing = min(PASS_SPACING_S, max(MIN_PASS_SPACING_S, self._loop.time() - now))
        if due:
            self._arm(due[0][0])
        if holds:
            self._arm(holds[0][0])

    def _deliver(self, paced: Paced, now: float) -> None:
        if paced.closed or paced.done.done():
            return
        upto = paced.due_count(now)
        if upto > paced.sent:
            words = list(paced.words[paced.sent : upto])
            paced.sent = upto
            try:
                paced.sink(words)
            except Exception as exc:
                paced.done.set_exception(exc)
                return
        if paced.sent >= len(paced.words):
            paced.done.set_result(None)
        else:
            self._push(paced)


_pacers: PerLoop[Pacer] = PerLoop(Pacer)


def get_pacer() -> Pacer:
    """This event loop's pacer, made on first use."""
    pacer, _new = _pacers.get()
    if pacer.closed:
        _pacers.pop()
        pacer, _new = _pacers.get()
    return pacer


def close_pacer() -> None:
    """Stop this loop's pacer (the registry closes: tests, shutdown)."""
    pacer = _pacers.pop()
    if pacer is not None:
        pacer.close()
