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
