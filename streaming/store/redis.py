"""The Redis store: every Redis key and command of the stream store lives here."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import redis.asyncio as aioredis
from django.conf import settings

from streaming.store.base import SessionState

logger = logging.getLogger(__name__)

RUNNING_KEY = "cn:running"  # hash: session id -> owning process id
PROCESSES_KEY = "cn:procs"  # set of process ids that have sent a heartbeat


def session_key(session_id: str) -> str:
    return f"cn:s:{session_id}"


def words_key(session_id: str) -> str:
    return f"cn:s:{session_id}:w"


def cancel_key(session_id: str) -> str:
    return f"cn:s:{session_id}:cancel"


def watched_key(session_id: str) -> str:
    return f"cn:s:{session_id}:watched"


def process_key(process_id: str) -> str:
    return f"cn:proc:{process_id}"


def _running_ttl_s() -> int:
    """A running session outlives its deadline by the retention window, even if nobody closes it."""
    knobs = settings.STREAMING
    return int(knobs["STREAM_DEADLINE_S"] + knobs["STREAM_RETENTION_S"] + 60)


class RedisStore:
    """Words in a list per session (index + 1 = seq), state in a hash, one pipeline per flush."""

    def __init__(self, url: str) -> None:
        self._redis = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=10,
        )
        self._pending: dict[str, list[str]] = {}
        self._flush_lock = asyncio.Lock()

    async def open_session(self, session_id: str, owner_id: int, process_id: str, estimated_words: int) -> None:
        ttl = _running_ttl_s()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(session_key(session_id), mapping={"owner": owner_id, "proc": process_id, "est": estimated_words})
            pipe.expire(session_key(session_id), ttl)
            pipe.hset(RUNNING_KEY, session_id, process_id)
            await pipe.execute()

    def buffer_word(self, session_id: str, text: str) -> None:
        pending = self._pending.get(session_id)
        if pending is None:
            self._pending[session_id] = [text]
        else:
            pending.append(text)

    async def flush(self) -> None:
        async with self._flush_lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, {}
            ttl = _running_ttl_s()
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for session_id, words in batch.items():
                        pipe.rpush(words_key(session_id), *words)
                        pipe.expire(words_key(session_id), ttl)
                    await pipe.execute()
            except Exception:
                # Keep the words, in order, ahead of anything buffered meanwhile; the next flush retries.
                for session_id, words in batch.items():
                    self._pending[session_id] = words + self._pending.get(session_id, [])
                raise

    async def close_session(self, session_id: str, terminal: dict[str, Any], retention_s: int) -> bool:
        await self.flush()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(session_key(session_id), "terminal", orjson.dumps(terminal).decode())
            pipe.hdel(RUNNING_KEY, session_id)
            pipe.expire(session_key(session_id), retention_s)
            pipe.expire(words_key(session_id), retention_s)
            pipe.delete(cancel_key(session_id), watched_key(session_id))
            won, *_ = await pipe.execute()
        return bool(won)

    async def read(self, session_id: str, after_seq: int) -> SessionState | None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(session_key(session_id))
            pipe.lrange(words_key(session_id), after_seq, -1)
            meta, words = await pipe.execute()
        if not meta or "owner" not in meta:
            return None
        terminal = orjson.loads(meta["terminal"]) if "terminal" in meta else None
        return SessionState(
            session_id,
            int(meta["owner"]),
            meta["proc"],
            int(meta["est"]),
            terminal=terminal,
            words=words,
            first_seq=after_seq + 1,
        )

    async def request_cancel(self, session_id: str) -> None:
        await self._redis.set(cancel_key(session_id), 1, ex=_running_ttl_s())

    async def watch_session(self, session_id: str) -> None:
        await self._redis.set(watched_key(session_id), 1, ex=_running_ttl_s())

    async def pending_controls(self, session_ids: list[str]) -> tuple[list[str], list[str]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.mget([cancel_key(sid) for sid in session_ids])
            pipe.mget([watched_key(sid) for sid in session_ids])
            cancels, watches = await pipe.execute()
        cancelled = [sid for sid, flag in zip(session_ids, cancels, strict=True) if flag]
        watched = [sid for sid, flag in zip(session_ids, watches, strict=True) if flag]
        return cancelled, watched

    async def running_sessions(self) -> dict[str, str]:
        result = await self._redis.hgetall(RUNNING_KEY)  # type: ignore[misc]  # redis-py types sync|async
        return dict(result)

    async def heartbeat(self, process_id: str, info: dict[str, Any], ttl_s: int) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(process_key(process_id), orjson.dumps(info), ex=ttl_s)
            pipe.sadd(PROCESSES_KEY, process_id)
            await pipe.execute()

    async def processes(self) -> dict[str, dict[str, Any]]:
        ids = sorted(await self._redis.smembers(PROCESSES_KEY))  # type: ignore[misc]
        if not ids:
            return {}
        infos = await self._redis.mget([process_key(pid) for pid in ids])
        dead = [pid for pid, info in zip(ids, infos, strict=True) if info is None]
        if dead:
            await self._redis.srem(PROCESSES_KEY, *dead)  # type: ignore[misc]
        return {pid: orjson.loads(info) for pid, info in zip(ids, infos, strict=True) if info is not None}

    async def forget_process(self, process_id: str) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(process_key(process_id))
            pipe.srem(PROCESSES_KEY, process_id)
            await pipe.execute()

    async def ping(self) -> None:
        await self._redis.ping()  # type: ignore[misc]

    async def aclose(self) -> None:
        await self._redis.aclose()
