"""RowPacing: connection rows wait for a quiet moment, never past ROWS_MAX_WAIT_S."""

from __future__ import annotations

from streaming.row_pacing import ROWS_MAX_WAIT_S, RowPacing

QUIET_S = 0.5


def test_nothing_waiting_is_never_due() -> None:
    assert not RowPacing().due(100.0, QUIET_S)


def test_rows_are_due_once_no_socket_came_for_the_quiet_time() -> None:
    """A storm logs rows 1 ms apart: not due while it lasts, due QUIET_S after its last row."""
    pacing = RowPacing()
    for step in range(700):
        pacing.logged(10.0 + step / 1000)
        assert not pacing.due(10.0 + step / 1000, QUIET_S)
    assert not pacing.due(10.699 + QUIET_S - 0.01, QUIET_S)
    assert pacing.due(10.699 + QUIET_S, QUIET_S)


def test_a_steady_churn_still_writes_within_the_longest_wait() -> None:
    """A row every 0.1 s for ever: due once the oldest waited ROWS_MAX_WAIT_S."""
    pacing = RowPacing()
    now = 0.0
    while not pacing.due(now, QUIET_S):
        pacing.logged(now)
        now += 0.1
    assert ROWS_MAX_WAIT_S <= now <= ROWS_MAX_WAIT_S + 0.1


def test_taken_rows_start_a_new_wait() -> None:
    """After the rows are taken nothing is due until a new row comes; the wait counts from that row."""
    pacing = RowPacing()
    pacing.logged(0.0)
    pacing.taken()
    assert not pacing.due(10.0, QUIET_S)
    pacing.logged(10.0)
    assert pacing.due(10.0 + QUIET_S, QUIET_S)
