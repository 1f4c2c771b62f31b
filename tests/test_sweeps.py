"""Rows left running by a process that is gone end from what the store still holds of them."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from streaming import protocol
from streaming.models import StreamSession
from streaming.protocol import ErrorCode
from streaming.store.memory import MemoryStore
from streaming.sweeps import sweep_orphan_rows


def running_row(owner: Any, session_id: str, process_id: str) -> None:
    StreamSession.objects.create(
        session_id=session_id, owner=owner, topic="t", platform="tiktok", duration=30, process_id=process_id
    )


def row(session_id: str) -> StreamSession:
    return StreamSession.objects.get(session_id=session_id)


async def test_orphan_rows_end_from_the_store(user: Any) -> None:
    """Running in the store -> worker_lost with its words; ended in the store -> saved as it ended; unknown ->
    worker_lost with no words; a live process's row is left alone."""
    ids = {
        name: f"00000000-0000-0000-0000-00000000000{i}" for i, name in enumerate(("running", "ended", "gone", "alive"))
    }
    for name, sid in ids.items():
        await database_sync_to_async(running_row)(user, sid, "proc-alive" if name == "alive" else "proc-dead")
    store = MemoryStore()
    await store.open_session(ids["running"], user.pk, "proc-dead", 10, ["Hook: ", "coffee "])
    await store.open_session(ids["ended"], user.pk, "proc-dead", 10, ["All ", "done. "])
    completed = protocol.stream_completed(ids["ended"], 1, 2, 1200, {"total_tokens": 7})
    assert await store.close_session(ids["ended"], completed, 60) is None

    ended = await sweep_orphan_rows(store, ["proc-alive"], older_than_s=0)

    assert ended == 3
    lost = await database_sync_to_async(row)(ids["running"])
    assert (lost.status, lost.error_code, lost.script, lost.words) == ("failed", "worker_lost", "Hook: coffee ", 2)
    state = await store.read(ids["running"], 0)
    assert state is not None and state.terminal is not None and state.terminal["error"]["code"] == "worker_lost"
    saved = await database_sync_to_async(row)(ids["ended"])
    assert (saved.status, saved.script, saved.words, saved.usage) == ("completed", "All done. ", 2, {"total_tokens": 7})
    gone = await database_sync_to_async(row)(ids["gone"])
    assert (gone.status, gone.error_code, gone.words) == ("failed", ErrorCode.WORKER_LOST.value, 0)
    assert (await database_sync_to_async(row)(ids["alive"])).status == "running"
    assert await sweep_orphan_rows(store, ["proc-alive"], older_than_s=0) == 0  # nothing is ended twice
