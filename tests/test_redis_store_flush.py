"""The Redis store's flush: a session's terminal frame is stored only after every one of its words."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import pytest

from streaming import protocol
from streaming.store.quota import utc_day
from streaming.store.redis import RedisStore
from tests.redisutil import flushed_redis

pytestmark = pytest.mark.redis


async def test_last_word_of_a_session_ending_during_a_flush_is_stored() -> None:
    """A generation emits its last word and ends while a tick's flush is writing: the word is stored, then the end.

    Found by bench.rolling: a client resuming on another process got the terminal frame (seq 200) after seq 199.
    """
    store = RedisStore(flushed_redis())
    session_id, words = str(uuid.uuid4()), ["Hook: "]
    terminal = protocol.stream_completed(session_id, 1, 2, 10, {})
    await store.open_session(session_id, 1, "proc", 2, words)
    write_words = store._write_words
    ending: list[asyncio.Task[bool]] = []

    async def words_then_the_end_arrives() -> None:
        store._write_words = write_words  # type: ignore[method-assign]  # only this one flush is slowed down
        await write_words()  # this tick's batch: seq 1
        words.append("coffee ")  # meanwhile the generation emits seq 2 and ends
        ending.append(asyncio.create_task(store.close_session(session_id, terminal, 60)))
        await asyncio.sleep(0)  # close_session marks the session closing and waits for this flush

    store._write_words = words_then_the_end_arrives  # type: ignore[method-assign]
    try:
        await store.flush()
        assert await ending[0] is None  # ours was stored
        state = await store.read(session_id, 0)
    finally:
        await store.aclose()
    assert state is not None
    assert (state.words, state.terminal) == (["Hook: ", "coffee "], terminal)


async def test_words_of_many_sessions_land_in_one_flush_exactly() -> None:
    """Every session's new words reach its list in order, whatever they hold (quotes, newlines, any script)."""
    store = RedisStore(flushed_redis())
    sessions = {str(uuid.uuid4()): [f'{i} "quoted" ', "naïve\n\n", "日本語 ", "\\back ", "end."] for i in range(50)}
    try:
        live = {session_id: words[:2] for session_id, words in sessions.items()}
        for session_id, words in live.items():
            await store.open_session(session_id, 1, "proc", 5, words)
        for session_id, words in live.items():
            words.extend(sessions[session_id][2:])  # the live lists grow after the first flush
        await store.flush()
        states = [await store.read(session_id, 0) for session_id in sessions]
    finally:
        await store.aclose()
    assert [state.words if state else None for state in states] == list(sessions.values())


async def test_flush_after_redis_forgot_its_script() -> None:
    """SCRIPT FLUSH (as after a Redis restart): the next flush loads the script again and writes the words."""
    url = flushed_redis()
    store = RedisStore(url)
    session_id, words = str(uuid.uuid4()), ["Hook: "]
    try:
        await store.open_session(session_id, 1, "proc", 3, words)
        words.append("more ")
        await store._redis.script_flush()
        await store.flush()
        state = await store.read(session_id, 0)
    finally:
        await store.aclose()
    assert state is not None and state.words == ["Hook: ", "more "]


async def test_list_lost_by_redis_is_restored_from_the_live_words() -> None:
    """Redis lost a running session's list: the next flush writes it whole again, so seq = index + 1 holds."""
    store = RedisStore(flushed_redis())
    session_id, words = str(uuid.uuid4()), ["one ", "two "]
    try:
        await store.open_session(session_id, 1, "proc", 3, words)
        await store._redis.delete(f"cn:s:{session_id}:w")
        words.append("three.")
        await store.flush()
        state = await store.read(session_id, 0)
    finally:
        await store.aclose()
    assert state is not None and state.words == ["one ", "two ", "three."]


def spy_on_flushes(store: RedisStore) -> list[tuple[list[Any], list[Any]]]:
    """Every FLUSH_LUA call's two batches (sessions with new words, sessions opened), decoded."""
    calls: list[tuple[list[Any], list[Any]]] = []
    evalsha = store._redis.evalsha

    async def spy(sha: str, numkeys: int, *args: Any) -> Any:
        calls.append((orjson.loads(args[0]), orjson.loads(args[1])))
        return await evalsha(sha, numkeys, *args)  # type: ignore[misc]

    store._redis.evalsha = spy  # type: ignore[method-assign]
    return calls


async def test_a_flush_sends_only_sessions_with_new_words() -> None:
    """Sessions whose live list did not grow are not sent; a new session's metadata goes once, on its first flush."""
    store = RedisStore(flushed_redis())
    lists = {str(uuid.uuid4()): ["a "] for _ in range(3)}
    try:
        for session_id, words in lists.items():
            await store.open_session(session_id, 1, "proc", 5, words)
        calls = spy_on_flushes(store)
        grown = next(iter(lists))
        lists[grown].append("b ")
        await store.flush()
        await store.flush()  # nothing new: no call at all
        states = {session_id: await store.read(session_id, 0) for session_id in lists}
    finally:
        await store.aclose()
    assert calls == [([[grown, 1, 2, ["b "]]], [])]
    assert {sid: state.words if state else None for sid, state in states.items()} == lists


async def test_words_of_the_day_are_counted_per_owner() -> None:
    """One count per user of every word written, whichever of their sessions wrote it."""
    store = RedisStore(flushed_redis())
    owners = {str(uuid.uuid4()): owner for owner in (7, 7, 8)}
    lists: dict[str, list[str]] = {session_id: [] for session_id in owners}
    try:
        for session_id, owner in owners.items():
            await store.open_session(session_id, owner, "proc", 5, lists[session_id])
        for words in lists.values():
            words.extend(["one ", "two "])
        await store.flush()
        next(iter(lists.values())).append("three ")
        await store.flush()
        used = {owner: await store.words_used(owner, utc_day()) for owner in (7, 8)}
    finally:
        await store.aclose()
    assert used == {7: 5, 8: 2}


async def test_what_redis_lost_is_written_again_on_the_next_flush() -> None:
    """FLUSHDB (as a restart without persistence): the next words bring back the list, the hash, the running
    entry and this process's heartbeat."""
    store = RedisStore(flushed_redis())
    session_id, words = str(uuid.uuid4()), ["one "]
    try:
        await store.heartbeat("proc", {"streams": 1}, 60)
        await store.open_session(session_id, 1, "proc", 3, words)
        await store._redis.flushdb()
        words.append("two ")
        await store.flush()
        state = await store.read(session_id, 0)
        running, processes = await store.running_sessions(), await store.processes()
    finally:
        await store.aclose()
    assert state is not None and (state.words, state.owner_id, state.estimated_words) == (["one ", "two "], 1, 3)
    assert (running, list(processes)) == ({session_id: "proc"}, ["proc"])


async def test_a_session_opened_while_redis_failed_is_written_by_a_later_flush() -> None:
    """The flush of open_session fails: the session's metadata and heartbeat go with the next flush."""
    store = RedisStore(flushed_redis())
    session_id, words = str(uuid.uuid4()), ["one "]
    evalsha = store._redis.evalsha

    async def down(sha: str, numkeys: int, *args: Any) -> Any:
        store._redis.evalsha = evalsha  # type: ignore[method-assign]  # only this one call fails
        raise ConnectionError("Redis is down")

    try:
        await store.heartbeat("proc", {"streams": 1}, 60)
        await store._redis.flushdb()
        store._redis.evalsha = down  # type: ignore[method-assign]
        with pytest.raises(ConnectionError):
            await store.open_session(session_id, 1, "proc", 3, words)
        await store.flush()
        state = await store.read(session_id, 0)
        processes = await store.processes()
    finally:
        await store.aclose()
    assert state is not None and state.words == ["one "]
    assert list(processes) == ["proc"]
