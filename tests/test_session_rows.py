"""Generations' rows in batches: one trip for many starts and ends, the same rules as one at a time."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import DatabaseError

from streaming import services
from streaming.models import DailyUsage, StreamSession
from streaming.protocol import Platform, ScriptRequest
from streaming.session_rows import SessionRows

REQUEST = ScriptRequest(topic="pour-over coffee", platform=Platform.TIKTOK, duration=30, request_id="r1")


def start(owner_id: int) -> services.SessionStart:
    return services.SessionStart(str(uuid.uuid4()), owner_id, None, REQUEST, "mock", "mock-1", "proc-a")


def rows_by_session() -> dict[str, Any]:
    return {str(row.session_id): row for row in StreamSession.objects.all()}


async def test_many_starts_and_ends_share_trips_and_keep_their_fields(user: Any, monkeypatch: Any) -> None:
    """50 generations start and end together: every row is made and saved as one at a time would, in a few trips."""
    trips: list[tuple[int, int]] = []
    record = services.sessions_record

    def counted(*, starts: list[Any], ends: list[Any]) -> list[int | Exception]:
        trips.append((len(starts), len(ends)))
        return record(starts=starts, ends=ends)

    monkeypatch.setattr(services, "sessions_record", counted)
    rows, starts = SessionRows(), [start(user.pk) for _ in range(50)]
    ids = await asyncio.gather(*(rows.create(s) for s in starts))
    ends = [services.SessionEnd(s.session_id, "completed", f"script {i}.", 2, {"total_tokens": i}, 40) for i, s in
            enumerate(starts)]  # fmt: skip
    await asyncio.gather(*(rows.finish(end) for end in ends))
    saved = await database_sync_to_async(rows_by_session)()
    assert len(trips) <= 4 and sum(n for n, _ in trips) == 50 and sum(n for _, n in trips) == 50
    for i, s in enumerate(starts):
        row = saved[s.session_id]
        assert row.pk == ids[i]
        assert (row.owner_id, row.topic, row.platform, row.request_id, row.estimated_words) == (
            user.pk, "pour-over coffee", "tiktok", "r1", REQUEST.estimated_words)  # fmt: skip
        assert (row.status, row.script, row.words, row.usage, row.elapsed_ms) == (
            "completed", f"script {i}.", 2, {"total_tokens": i}, 40)  # fmt: skip
        assert row.finished_at is not None


async def test_an_end_never_overwrites_a_row_ended_elsewhere(user: Any) -> None:
    """A worker_lost sweep saved the row first: the owner's late end leaves it as it is."""
    rows, s = SessionRows(), start(user.pk)
    await rows.create(s)
    await database_sync_to_async(services.session_finish)(
        session_id=s.session_id, status="failed", script="a ", words=1, error_code="worker_lost"
    )
    await rows.finish(services.SessionEnd(s.session_id, "completed", "a b c.", 3))
    row = (await database_sync_to_async(rows_by_session)())[s.session_id]
    assert (row.status, row.script, row.error_code) == ("failed", "a ", "worker_lost")


async def test_a_start_the_database_refuses_fails_only_its_generation(user: Any) -> None:
    """The same session id twice in one batch: one row is made, the other start gets the database's error."""
    rows, good = SessionRows(), start(user.pk)
    twin = services.SessionStart(good.session_id, user.pk, None, REQUEST, "mock", "mock-1", "proc-b")
    other = start(user.pk)
    results = await asyncio.gather(rows.create(good), rows.create(twin), rows.create(other), return_exceptions=True)
    assert isinstance(results[0], int) and isinstance(results[2], int)
    assert isinstance(results[1], DatabaseError)
    assert set(await database_sync_to_async(rows_by_session)()) == {good.session_id, other.session_id}


@pytest.mark.parametrize("fail_on", ["starts", "ends"])
async def test_a_database_that_is_down_fails_the_waiting_rows(user: Any, monkeypatch: Any, fail_on: str) -> None:
    """Every generation waiting on the failed trip gets the error; the next trip works again."""

    def down(*, starts: list[Any], ends: list[Any]) -> list[int]:
        raise DatabaseError("database is down")

    rows = SessionRows()
    if fail_on == "ends":
        s = start(user.pk)
        await rows.create(s)
    monkeypatch.setattr(services, "sessions_record", down)
    with pytest.raises(DatabaseError):
        if fail_on == "starts":
            await rows.create(start(user.pk))
        else:
            await rows.finish(services.SessionEnd(s.session_id, "completed", "x.", 1))
    monkeypatch.undo()
    assert isinstance(await rows.create(start(user.pk)), int)


async def test_a_batch_of_ends_counts_each_owners_day_once_per_generation(user: Any, other_user: Any) -> None:
    """Ends of two users in one batch: the one whose day has a row and the one whose day has none get their
    words and generations added; a row ended elsewhere (a sweep) adds nothing again."""
    rows = SessionRows()
    mine = [start(user.pk) for _ in range(3)]
    theirs = [start(other_user.pk) for _ in range(2)]
    swept = start(user.pk)
    await asyncio.gather(*(rows.create(s) for s in [*mine, *theirs, swept]))
    await rows.finish(services.SessionEnd(mine[0].session_id, "completed", "a b.", 2))  # the day's row exists now
    await database_sync_to_async(services.session_finish)(
        session_id=swept.session_id, status="failed", script="a ", words=1, error_code="worker_lost"
    )
    ends = [services.SessionEnd(s.session_id, "completed", "x " * 5, 5) for s in [*mine[1:], *theirs, swept]]
    await asyncio.gather(*(rows.finish(end) for end in ends))

    def days() -> dict[int, tuple[int, int]]:
        return {row.user_id: (row.words, row.generations) for row in DailyUsage.objects.all()}

    assert await database_sync_to_async(days)() == {user.pk: (2 + 1 + 5 + 5, 4), other_user.pk: (10, 2)}
