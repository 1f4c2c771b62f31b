"""The generation state machine without I/O: each interleaving a plain step-by-step test."""

from __future__ import annotations

import pytest

from streaming.lifecycle import Lifecycle, Phase, Stop
from streaming.protocol import ErrorCode

OURS = {"type": "stream.completed", "seq": 10}
LOST = {"type": "stream.failed", "seq": 7, "error": {"code": "worker_lost", "message": "gone"}}


def test_first_stop_interrupts_later_ones_do_not() -> None:
    life = Lifecycle()
    assert life.request_stop(Stop.CANCELLED) is True
    assert life.request_stop(Stop.CANCELLED) is False  # double click, second tab, control loop
    assert life.request_stop(Stop.SHUTTING_DOWN) is False
    assert life.stop is Stop.CANCELLED


def test_stop_while_finishing_is_a_no_op() -> None:
    life = Lifecycle()
    assert life.begin_finishing() is True
    assert life.request_stop(Stop.CANCELLED) is False
    assert life.stop is None
    assert life.settle(OURS, None) == OURS


def test_finishing_starts_once() -> None:
    life = Lifecycle()
    assert life.begin_finishing() is True
    assert life.begin_finishing() is False
    assert life.phase is Phase.FINISHING


def test_settle_ours_when_the_store_took_it() -> None:
    life = Lifecycle()
    life.begin_finishing()
    assert life.settle(OURS, None) == OURS
    assert life.owns_end and life.phase is Phase.ENDED


def test_sweep_raced_a_slow_owner_its_terminal_wins() -> None:
    """worker_lost stored first by another process: that frame is the one terminal, the row is not ours."""
    life = Lifecycle()
    life.begin_finishing()
    assert life.settle(OURS, LOST) == LOST
    assert life.owns_end is False


def test_settle_is_once_a_second_call_returns_the_first() -> None:
    life = Lifecycle()
    life.begin_finishing()
    first = life.settle(OURS, None)
    assert life.settle(LOST, LOST) is first


def test_settle_before_finishing_is_refused() -> None:
    with pytest.raises(RuntimeError):
        Lifecycle().settle(OURS, None)


def test_listeners_are_accepted_until_ended() -> None:
    life = Lifecycle()
    assert life.accepts_listeners
    life.begin_finishing()
    assert life.accepts_listeners  # a resume during finishing still gets the broadcast
    life.settle(OURS, None)
    assert not life.accepts_listeners  # after it, the settled frame is handed over directly


@pytest.mark.parametrize(
    ("stop", "outcome"),
    [
        (Stop.CANCELLED, ("cancelled", None)),
        (Stop.SHUTTING_DOWN, ("failed", ErrorCode.SHUTTING_DOWN)),
    ],
)
def test_outcome_of_a_stop(stop: Stop, outcome: tuple[str, ErrorCode | None]) -> None:
    life = Lifecycle()
    life.request_stop(stop)
    assert life.outcome_of_stop() == outcome
