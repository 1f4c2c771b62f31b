"""The Redis store's flush: a session's terminal frame is stored only after every one of its words."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from streaming import protocol
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
