"""Per-connection flood control: a token bucket, and at most one rate_limited error a second."""

from __future__ import annotations


class TokenBucket:
    """`burst` frames at once, refilled at `rate_per_s`; frames beyond it are refused, not queued."""

    __slots__ = ("capacity", "rate", "reported", "tokens", "updated")  # one per socket (issue 11)

    def __init__(self, burst: int, rate_per_s: float) -> None:
        self.capacity = float(burst)
        self.rate = rate_per_s
        self.tokens = float(burst)
        self.updated = 0.0
        self.reported = -1.0

    def take(self, now: float) -> bool:
        if self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def should_report(self, now: float) -> bool:
        """Answer a flood with one error a second, not one per refused frame."""
        if now - self.reported >= 1.0:
            self.reported = now
            return True
        return False
