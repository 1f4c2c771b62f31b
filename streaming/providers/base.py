"""The Provider protocol every AI backend implements, and the one error type it may raise."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from streaming.protocol import ErrorCode, ScriptRequest


class ProviderError(Exception):
    """A provider failure, already translated to a wire error code at the provider's boundary."""

    def __init__(self, code: ErrorCode, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s


class ScriptStream(Protocol):
    """One generation: iterate it for text deltas (any split), read usage after it ends, close it early."""

    usage: dict[str, Any]

    def __aiter__(self) -> AsyncIterator[str]: ...

    async def aclose(self) -> None:
        """Stop generating now and release the upstream connection (cancel, deadline)."""


class Provider(Protocol):
    """An AI backend. `name` and `model` are reported in stream.started, /readyz and the session row."""

    name: str
    model: str
    # True when every delta is already one whole word with its trailing whitespace (the mock): the runner
    # then skips word splitting, which matters on the per-word hot path.
    whole_words: bool

    async def open(self, request: ScriptRequest) -> ScriptStream:
        """Start a generation; raise ProviderError when it cannot start (before any word)."""

    def describe(self) -> dict[str, Any]:
        """What /readyz shows about this provider, without calling it."""
