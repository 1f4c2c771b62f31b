"""Who a log line is about: the connection, stream session and user, stamped on every record.

The consumer binds its connection and user once per socket (each socket is one task, so the binding holds for
everything that task logs, and tasks it starts inherit it); a generation's task adds its session. Lines logged
elsewhere about one stream (the registry's loops, sweeps) pass `extra=about(...)`, which wins over the binding.
"""

from __future__ import annotations

import logging
from contextvars import Context, ContextVar
from typing import Any

connection_id: ContextVar[str | None] = ContextVar("connection_id", default=None)
session_id: ContextVar[str | None] = ContextVar("session_id", default=None)
user_id: ContextVar[int | None] = ContextVar("user_id", default=None)

# The record attributes the formatters write, in their order.
FIELDS: tuple[str, ...] = ("connection_id", "session_id", "user_id")
_VARS: dict[str, ContextVar[Any]] = {"connection_id": connection_id, "session_id": session_id, "user_id": user_id}


class _Process:
    """This process's id (its registry's), on every line so a line joins /api/websocket/stats and /metrics."""

    id: str | None = None


def bind_connection(connection: str, user: int | None) -> None:
    """The current task (a socket's) and every task it starts from now on log as this connection and user."""
    connection_id.set(connection)
    user_id.set(user)


def bind_session(session: str) -> None:
    """The current task (a generation's) logs as this session too."""
    session_id.set(session)


def bind_process(process_id: str) -> None:
    _Process.id = process_id


def process_id() -> str | None:
    return _Process.id


def about(*, connection: str | None = None, session: str | None = None, user: int | None = None) -> dict[str, Any]:
    """`extra=` for a line about a stream or connection logged outside its own task."""
    return {"connection_id": connection, "session_id": session, "user_id": user}


def bound_in(context: Context) -> dict[str, Any]:
    """`extra=` naming what `context` (a socket's, saved earlier) is bound to, for a line logged from another task."""
    return {name: context.get(var) for name, var in _VARS.items()}


class StampContext(logging.Filter):
    """Puts the bound ids on each record that did not bring its own (extra=); the formatters write them."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _VARS.items():
            if not hasattr(record, name):
                setattr(record, name, var.get())
        return True
