"""Cluster upkeep: sessions whose process died end as worker_lost, keeping the words the store still holds.

Two sweeps, on their own loops so neither can hold up a heartbeat:
- the store sweep ends running sessions of processes that stopped heartbeating (first process to close wins);
- the row sweep ends database rows left `running` by a process that is gone, from what the store holds of them
  (their words, or the terminal frame stored before the process died), or as worker_lost with no words when
  the store has nothing (embedded mode after a restart, a store that lost them).
"""

from __future__ import annotations

import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from creatornexus import logcontext
from streaming import metrics, protocol, services
from streaming.protocol import ErrorCode
from streaming.store import SessionState, StreamStore

logger = logging.getLogger(__name__)

LOST_MESSAGE = "The server process writing this script stopped; the words so far are kept."


def group_name(session_id: str) -> str:
    """The channel-layer group that wakes a session's watchers on every process."""
    return f"stream.{session_id}"


async def wake(session_id: str) -> None:
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(group_name(session_id), {"type": "stream.wake", "session_id": session_id})


async def sweep_lost_sessions(store: StreamStore, own_process_id: str) -> None:
    """Fail every running session whose process stopped heartbeating (kill -9): nothing runs forever."""
    running = await store.running_sessions()
    if not running:
        return
    alive = set(await store.processes()) | {own_process_id}
    for session_id, owner_process in running.items():
        if owner_process not in alive:
            await fail_lost_session(store, session_id)


async def fail_lost_session(store: StreamStore, session_id: str) -> None:
    """End a session whose process died, keeping the words it wrote; the first process to get here wins."""
    state = await store.read(session_id, 0)
    if state is None or not state.running:
        return
    seq = len(state.words)
    frame = protocol.stream_failed(session_id, seq, ErrorCode.WORKER_LOST, LOST_MESSAGE)
    if await store.close_session(session_id, frame, settings.STREAMING["STREAM_RETENTION_S"]) is not None:
        return  # another process (or the owner, at the last moment) ended it first
    metrics.stream_lost()
    logger.warning(
        "session %s lost its process %s after %d words",
        session_id,
        state.process_id,
        seq,
        extra=logcontext.about(session=session_id, user=state.owner_id),
    )
    await database_sync_to_async(services.session_finish)(**_row_end(state, frame))
    await wake(session_id)


async def sweep_orphan_rows(store: StreamStore, alive_process_ids: list[str], older_than_s: float) -> int:
    """End rows left running by processes that are gone; how many were ended."""
    orphans = await database_sync_to_async(services.sessions_running_elsewhere)(
        alive_process_ids=alive_process_ids, older_than_s=older_than_s
    )
    for session_id in orphans:
        state = await store.read(session_id, 0)
        if state is not None and state.running:
            await fail_lost_session(store, session_id)
        elif state is not None and state.terminal is not None:
            # The owner stored its end, then died before saving the row: save what it stored.
            await database_sync_to_async(services.session_finish)(**_row_end(state, state.terminal))
        else:
            await database_sync_to_async(services.session_finish)(
                session_id=session_id,
                status="failed",
                script="",
                words=0,
                error_code=ErrorCode.WORKER_LOST.value,
                error_message="The server process writing this script stopped; its words were not kept.",
            )
    if orphans:
        logger.warning("ended %d sessions left running by processes that are gone", len(orphans))
    return len(orphans)


def _row_end(state: SessionState, terminal: dict[str, Any]) -> dict[str, Any]:
    """session_finish's fields for a session ended from what the store holds."""
    words = state.words[: int(terminal.get("seq", len(state.words)))]
    kind = str(terminal.get("type", "stream.failed"))
    error = terminal.get("error") or {}
    return {
        "session_id": state.session_id,
        "status": kind.removeprefix("stream."),
        "script": "".join(words),
        "words": len(words),
        "usage": terminal.get("usage") or {},
        "elapsed_ms": terminal.get("elapsed_ms"),
        "error_code": str(error.get("code", "")),
        "error_message": str(error.get("message", "")),
    }
