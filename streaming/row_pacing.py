"""When a process writes its connection rows: once the handshakes have calmed down, so a storm's auth queries never
queue behind its own row inserts in the one ORM thread, and never later than ROWS_MAX_WAIT_S after the first."""

from __future__ import annotations

# Under a steady churn of sockets rows still reach the database this often at least.
ROWS_MAX_WAIT_S = 5.0


class RowPacing:
    """Tracks the rows waiting to be written (monotonic seconds); a pure rule, tested without I/O."""

    def __init__(self) -> None:
        self.first_at: float | None = None  # the oldest row waiting, None when none waits
        self.last_at = 0.0  # the newest row

    def logged(self, now: float) -> None:
        if self.first_at is None:
            self.first_at = now
        self.last_at = now

    def due(self, now: float, quiet_s: float) -> bool:
        """Rows wait and no new one came for quiet_s, or the oldest has waited ROWS_MAX_WAIT_S."""
        if self.first_at is None:
            return False
        return now - self.last_at >= quiet_s or now - self.first_at >= ROWS_MAX_WAIT_S

    def taken(self) -> None:
        """Every waiting row was taken for writing."""
        self.first_at = None
