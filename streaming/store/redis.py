"""The Redis store: every Redis key and command of the stream store lives here."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import orjson
import redis.asyncio as aioredis
from django.conf import settings
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.driver_info import DriverInfo
from redis.exceptions import NoScriptError

from creatornexus import logcontext
from streaming import metrics
from streaming.passbatch import PassBatch
from streaming.store.base import SessionState
from streaming.store.quota import Lease, LeaseKind, utc_day

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


def lease_key(kind: LeaseKind, user_id: int) -> str:
    """Sorted set of a user's leases of one kind: lease id scored by its expiry (ms on Redis's clock)."""
    return f"cn:q:{user_id}:{kind.value}"


def words_day_key(user_id: int, day: str) -> str:
    """Words generated for a user on one UTC day."""
    return f"cn:words:{user_id}:{day}"


# A day's count outlives its day, so a read just after midnight UTC still finds yesterday's.
WORDS_DAY_TTL_S = 2 * 86400
# Leases claimed or renewed per script call: a process with thousands of sockets never holds Redis for long.
RENEW_BATCH = 500
# Terminal frames written per script call, for the same reason.
TERMINALS_BATCH = 500

# Every lease script reads the time from Redis: processes whose clocks disagree still agree on expiries.
_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
# The key lives as long as its longest lease, then goes by itself.
_KEEP_KEY = """
local function keep(key, ttl)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
"""
# KEYS lease sets; ARGV[1] ttl ms, then a lease id and its limit (0 = none) per key. Per key 1 = held, 0 =
# refused. Claims run in order, so two of one batch for a user's last free place never both succeed. Mirrors
# LeaseTable.claim.
CLAIM_LUA = (
    _NOW_MS
    + _KEEP_KEY
    + """
local ttl = tonumber(ARGV[1])
local held = {}
for i, key in ipairs(KEYS) do
  local id, limit = ARGV[2 * i], tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if limit > 0 and not redis.call('ZSCORE', key, id) and redis.call('ZCARD', key) >= limit then
    held[i] = 0
  else
    redis.call('ZADD', key, now + ttl, id)
    keep(key, ttl)
    held[i] = 1
  end
end
return held
"""
)
# KEYS lease sets; ARGV one lease id per key. Mirrors LeaseTable.release.
RELEASE_LUA = """
for i, key in ipairs(KEYS) do redis.call('ZREM', key, ARGV[i]) end
return #KEYS
"""
# KEYS lease sets; ARGV[1] ttl ms, then one lease id per key. Mirrors LeaseTable.renew.
RENEW_LUA = (
    _NOW_MS
    + _KEEP_KEY
    + """
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[i + 1])
  keep(key, ttl)
end
return #KEYS
"""
)
# KEYS lease sets; the live leases of each. Mirrors LeaseTable.live.
COUNT_LUA = (
    _NOW_MS
    + """
local counts = {}
for i, key in ipairs(KEYS) do counts[i] = redis.call('ZCOUNT', key, '(' .. now, '+inf') end
return counts
"""
)


def _running_ttl_s() -> int:
    """A running session outlives its deadline by the retention window, even if nobody closes it."""
    knobs = settings.STREAMING
    return int(knobs["STREAM_DEADLINE_S"] + knobs["STREAM_RETENTION_S"] + 60)


# Connections of a store's client. A burst of 2,000 stream starts opened one connection per start (~1 ms of the
# event loop each, and connects timing out at 2 s); a bounded pool queues the commands on a few connections,
# which pipelined Redis serves as fast. Nothing in the store blocks in Redis (no BLPOP, no pub/sub, no lock)
# and nothing holds a connection while it waits for another, so a bounded pool cannot deadlock.
POOL_SIZE = 50
# How long a command waits for a free connection: past a command's own timeouts (connect 2 s, read 5 s).
POOL_WAIT_S = 10


class _BlockingSentinelPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """The Sentinel master's connections, bounded as POOL_SIZE says (redis-py's Sentinel pool is unbounded)."""


def connect(url: str) -> aioredis.Redis:
    """A client for REDIS_URL, or for the master its Sentinels name when REDIS_SENTINELS is set."""
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
        "health_check_interval": 10,
        # Once per client: otherwise each new connection reads redis-py's version from the installed metadata
        # (importlib.metadata, a file system scan) on the event loop.
        "driver_info": DriverInfo(),
        "max_connections": POOL_SIZE,
        "timeout": POOL_WAIT_S,
    }
    if not settings.REDIS_SENTINELS:
        return aioredis.Redis.from_pool(aioredis.BlockingConnectionPool.from_url(url, **options))
    parsed = urlparse(url)
    sentinel = Sentinel(settings.REDIS_SENTINELS, socket_connect_timeout=2)
    return sentinel.master_for(
        settings.REDIS_SENTINEL_MASTER,
        connection_pool_class=_BlockingSentinelPool,
        db=int(parsed.path.strip("/") or 0),
        password=parsed.password,
        **options,
    )


META_COMMANDS = 3  # replies of _queue_meta in a pipeline


def _lua_key(key: str) -> str:
    """A key a helper above made of `{lua expression}` placeholders, as the Lua that builds it from those values."""
    parts = re.split(r"\{([^}]+)\}", key)  # text, expression, text, ...
    return " .. ".join(f"'{part}'" if i % 2 == 0 else part for i, part in enumerate(parts) if part)


# FLUSH_LUA's key of an owner's words of the day (the owner is a Lua number, printed as an integer).
_WORDS_DAY_KEY = _lua_key(words_day_key("{string.format('%d', owner)}", "{ARGV[4]}"))  # type: ignore[arg-type]

# One flush is this one command: it writes the hash and running entry of the sessions opened since the last
# flush, pushes the new words of every session that has some, and adds them to each owner's count of the day.
# Sessions travel as JSON arguments (orjson, ~0.15 us a session), because redis-py costs the event loop ~10 us
# of Python per command and reply: the INCRBY and EXPIRE per user that used to follow the words were 73 % of
# a flush at 1,000 streams (bench.flush_cost, py-spy). The script builds its keys from the ids, through the
# key helpers above (`_lua_key`): without Redis Cluster a script may build its keys. RPUSH takes at most 1,000
# words a call (Lua's unpack limit is far above that).
#
# ARGV: [[session id, owner, words in the live list, new words], ...], [[session id, owner, process,
# estimate], ...], the running TTL, the UTC day, the day's TTL, then optionally this process's heartbeat (id,
# info, TTL), re-sent ahead of the metadata. Returns the 1-based positions in the first list of the sessions
# whose list length is not their live list's: lists Redis lost.
FLUSH_LUA = f"""
local ttl = tonumber(ARGV[3])
if ARGV[6] then
  redis.call('SET', {_lua_key(process_key("{ARGV[6]}"))}, ARGV[7], 'EX', ARGV[8])
  redis.call('SADD', '{PROCESSES_KEY}', ARGV[6])
end
for _, meta in ipairs(cjson.decode(ARGV[2])) do
  local id = meta[1]
  redis.call('HSET', {_lua_key(session_key("{id}"))}, 'owner', meta[2], 'proc', meta[3], 'est', meta[4])
  redis.call('EXPIRE', {_lua_key(session_key("{id}"))}, ttl)
  redis.call('HSET', '{RUNNING_KEY}', id, meta[3])
end
local counts, lost = {{}}, {{}}
for i, item in ipairs(cjson.decode(ARGV[1])) do
  local owner, upto, words = item[2], item[3], item[4]
  local key = {_lua_key(words_key("{item[1]}"))}
  local n, length = #words, 0
  for first = 1, n, 1000 do
    length = redis.call('RPUSH', key, unpack(words, first, math.min(first + 999, n)))
  end
  if n == upto then
    redis.call('EXPIRE', key, ttl)
  end
  if length ~= upto then
    lost[#lost + 1] = i
  end
  counts[owner] = (counts[owner] or 0) + n
end
for owner, count in pairs(counts) do
  local key = {_WORDS_DAY_KEY}
  redis.call('INCRBY', key, count)
  redis.call('EXPIRE', key, ARGV[5])
end
return lost
"""


# The terminal frames of every session that ended since the last flush, after all their words: set each one
# unless one is set (first wins), start its retention window, take it out of the running set. One call for
# 2,000 streams ending at once, where a transaction each cost ~0.8 ms of the event loop.
#
# ARGV[1]: [[session id, terminal JSON, retention s, then owner, process, estimate when the hash is rewritten
# (it is gone after a Redis restart)], ...]. Returns per session "" when ours was set, else the frame stored first.
TERMINALS_LUA = f"""
local firsts = {{}}
for i, item in ipairs(cjson.decode(ARGV[1])) do
  local id, retention = item[1], item[3]
  local key = {_lua_key(session_key("{id}"))}
  if item[4] then
    redis.call('HSET', key, 'owner', item[4], 'proc', item[5], 'est', item[6])
  end
  if redis.call('HSETNX', key, 'terminal', item[2]) == 1 then
    firsts[i] = ''
  else
    firsts[i] = redis.call('HGET', key, 'terminal')
  end
  redis.call('HDEL', '{RUNNING_KEY}', id)
  redis.call('EXPIRE', key, retention)
  redis.call('EXPIRE', {_lua_key(words_key("{id}"))}, retention)
  redis.call('DEL', {_lua_key(cancel_key("{id}"))}, {_lua_key(watched_key("{id}"))})
end
return firsts
"""


def _terminal_item(session_id: str, terminal: dict[str, Any], retention_s: int) -> list[Any]:
    """TERMINALS_LUA's item for one session, without the hash's fields."""
    return [session_id, orjson.dumps(terminal).decode(), retention_s]


def _queue_meta(pipe: Any, session_id: str, local: _Local) -> None:
    """A running session's hash and running-set entry (META_COMMANDS commands)."""
    pipe.hset(session_key(session_id), mapping=local.meta())
    pipe.expire(session_key(session_id), _running_ttl_s())
    pipe.hset(RUNNING_KEY, session_id, local.process_id)


@dataclass(eq=False, slots=True)
class _Local:
    """A running session of this process: its live word list and how much of it Redis holds."""

    session_id: str
    owner_id: int
    process_id: str
    estimated_words: int
    words: list[str]
    flushed: int = 0
    # False until its hash and running entry are in Redis (it may have started while Redis was down).
    meta_written: bool = False
    # (terminal frame, retention) once the session ended; written after its last words, retried until it is.
    closing: tuple[dict[str, Any], int] | None = None
    # Once the terminal write happened: the frame another process had stored first, or None when ours won.
    closed: bool = False
    stored_first: dict[str, Any] | None = None

    def meta(self) -> dict[str, str | int]:
        return {"owner": self.owner_id, "proc": self.process_id, "est": self.estimated_words}


class RedisStore:
    """Words in a list per session (index + 1 = seq), state in a hash, one script call per flush for all sessions."""

    def __init__(self, url: str) -> None:
        self._redis = connect(url)
        self._flush_sha = hashlib.sha1(FLUSH_LUA.encode()).hexdigest()  # noqa: S324 - Redis names it so
        self._local: dict[str, _Local] = {}
        # Sessions that ended and whose terminal is not written yet: a flush looks at these, not at every session.
        self._closing: dict[str, _Local] = {}
        # Sessions opened since the last flush that wrote: their metadata is not in Redis yet.
        self._fresh: list[_Local] = []
        self._flush_lock = asyncio.Lock()
        # Flushes started and the last one finished, by number: a caller whose request a later-started flush
        # already covered does not write again (1,000 streams ending at once share a few round trips).
        self._flushes_started = 0
        self._flush_finished = 0
        self._last_heartbeat: tuple[str, bytes, int] | None = None
        self._claim = self._redis.register_script(CLAIM_LUA)
        self._release = self._redis.register_script(RELEASE_LUA)
        self._terminals = self._redis.register_script(TERMINALS_LUA)
        self._renew = self._redis.register_script(RENEW_LUA)
        self._count = self._redis.register_script(COUNT_LUA)
        # The calls of stream starts and ends, one round trip for all that come together.
        self._day_counts: PassBatch[str, int] = PassBatch(self._day_counts_many, "words-used")

    async def open_session(
        self, session_id: str, owner_id: int, process_id: str, estimated_words: int, words: list[str]
    ) -> None:
        local = self._local[session_id] = _Local(session_id, owner_id, process_id, estimated_words, words)
        self._fresh.append(local)
        # Written by a flush (shared with every session opened meanwhile) before this returns, so a resume on
        # another process finds it; if Redis is down, every flush tries again until it is written.
        await self.flush()

    async def _write_meta(self, session_id: str, local: _Local) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            self._queue_heartbeat(pipe)
            _queue_meta(pipe, session_id, local)
            await pipe.execute()
        local.meta_written = True

    def _heartbeat_args(self) -> tuple[str, bytes, int] | tuple[()]:
        """This process's last heartbeat for FLUSH_LUA, re-sent with new metadata (see _queue_heartbeat)."""
        return self._last_heartbeat or ()

    def _queue_heartbeat(self, pipe: Any) -> int:
        """Re-send this process's last heartbeat ahead of session metadata; how many replies it adds.

        After a Redis restart the metadata comes back on the next flush, before the next heartbeat would: a
        sweep reading the running set (first) and the process list (second) must never see our sessions
        without us, or it would end them as worker_lost.
        """
        if self._last_heartbeat is None:
            return 0
        process_id, info, ttl_s = self._last_heartbeat
        pipe.set(process_key(process_id), info, ex=ttl_s)
        pipe.sadd(PROCESSES_KEY, process_id)
        return 2

    async def flush(self) -> None:
        """New words of every running session in one round trip, then the ends of sessions that closed.

        Returns once a flush that started after the call has finished: callers that come together share one.
        """
        asked_after = self._flushes_started
        async with self._flush_lock:
            if self._flush_finished > asked_after:
                return  # a flush that started after this call has written everything it asked for
            self._flushes_started += 1
            number = self._flushes_started
            await self._write_words()
            # Only sessions whose words are all written: one that ended during this write has words the batch missed.
            ended = [local for local in self._closing.values() if local.flushed == len(local.words)]
            if ended:
                await self._write_terminals(ended)
            self._flush_finished = number

    async def _write_words(self) -> None:
        try:
            await self._write_words_once()
        except NoScriptError:
            # Redis forgot the script (a restart): load it and write again (the metadata writes repeat harmlessly).
            await self._redis.script_load(FLUSH_LUA)
            await self._write_words_once()

    async def _write_words_once(self) -> None:
        """One FLUSH_LUA call for the sessions with new words and those opened since; then restore lost lists."""
        grown = self._grown()
        fresh, self._fresh = self._fresh, []
        if not grown and not fresh:
            return
        # FLUSH_LUA's batch: this comprehension is most of a flush's Python, so it holds nothing a rare case needs.
        batch = [(local.session_id, local.owner_id, len(local.words), local.words[local.flushed :]) for local in grown]
        metas = [(local.session_id, local.owner_id, local.process_id, local.estimated_words) for local in fresh]
        heartbeat = self._heartbeat_args() if fresh else ()  # re-sent ahead of new metadata, as _queue_heartbeat
        started = time.perf_counter()
        try:
            lost = await self._redis.evalsha(  # type: ignore[misc]  # redis-py types sync|async
                self._flush_sha,
                0,
                orjson.dumps(batch),
                orjson.dumps(metas),
                _running_ttl_s(),
                utc_day(),
                WORDS_DAY_TTL_S,
                *heartbeat,
            )
        except BaseException:
            self._fresh = fresh + self._fresh  # their metadata goes on the next flush
            raise
        metrics.STORE_FLUSH.observe(time.perf_counter() - started)
        for local in fresh:
            local.meta_written = True
        for local, item in zip(grown, batch, strict=True):
            local.flushed = item[2]
        for position in lost:
            local = grown[position - 1]
            await self._restore(local.session_id, local, batch[position - 1][2])

    def _grown(self) -> list[_Local]:
        """Sessions whose live list is longer than what Redis holds.

        Every session is looked at (a length comparison, ~40 ns): at 40 words/s and 50 ms ticks nearly all have
        new words, so marking sessions on each word batch (emit_words) would cost more than this saves.
        """
        return [local for local in self._local.values() if len(local.words) > local.flushed]

    async def _restore(self, session_id: str, local: _Local, upto: int) -> None:
        """Redis lost this session (restart, flush): write it again from the live list, so seq = index + 1 holds."""
        logger.warning(
            "Redis lost running session %s; restoring its %d words",
            session_id,
            upto,
            extra=logcontext.about(session=session_id, user=local.owner_id),
        )
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(words_key(session_id))
            pipe.rpush(words_key(session_id), *local.words[:upto])
            pipe.expire(words_key(session_id), _running_ttl_s())
            await pipe.execute()
        await self._write_meta(session_id, local)

    async def close_session(self, session_id: str, terminal: dict[str, Any], retention_s: int) -> dict[str, Any] | None:
        local = self._local.get(session_id)
        if local is None:
            # Not running here (a sweep ends another process's session): its own call, the hash left as it is.
            (first,) = await self._terminals(args=[orjson.dumps([_terminal_item(session_id, terminal, retention_s)])])
            return orjson.loads(first) if first else None
        # Kept until written: if Redis is down now, every later flush tick tries again.
        local.closing = (terminal, retention_s)
        self._closing[session_id] = local
        await self.flush()
        return local.stored_first if local.closed else None

    async def _write_terminals(self, ended: list[_Local]) -> None:
        """TERMINALS_LUA for sessions whose words are all written; each learns whether its frame was set first.

        A batch written is forgotten at once: if a later batch fails, the next flush must not write these again
        (their second HSETNX would report our own frame as one stored first)."""
        for start in range(0, len(ended), TERMINALS_BATCH):
            batch = ended[start : start + TERMINALS_BATCH]
            items = []
            for local in batch:
                assert local.closing is not None
                terminal, retention_s = local.closing
                items.append([*_terminal_item(local.session_id, terminal, retention_s), *local.meta().values()])
            firsts = await self._terminals(args=[orjson.dumps(items)])
            for local, first in zip(batch, firsts, strict=True):
                local.closed, local.stored_first = True, orjson.loads(first) if first else None
                del self._local[local.session_id], self._closing[local.session_id]

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
        ).trimmed()

    async def request_cancel(self, session_id: str) -> None:
        await self._redis.set(cancel_key(session_id), 1, ex=_running_ttl_s())

    async def watch_session(self, session_id: str) -> None:
        await self._redis.set(watched_key(session_id), 1, ex=_running_ttl_s())

    async def pending_controls(self, session_ids: list[str]) -> tuple[list[str], list[str], list[str]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.mget([cancel_key(sid) for sid in session_ids])
            pipe.mget([watched_key(sid) for sid in session_ids])
            pipe.hmget(RUNNING_KEY, session_ids)
            cancels, watches, owners = await pipe.execute()
        cancelled = [sid for sid, flag in zip(session_ids, cancels, strict=True) if flag]
        watched = [sid for sid, flag in zip(session_ids, watches, strict=True) if flag]
        return cancelled, watched, await self._ended_elsewhere(session_ids, owners)

    async def _ended_elsewhere(self, session_ids: list[str], owners: list[str | None]) -> list[str]:
        """Sessions of ours no longer in the running set under our name whose terminal is stored: fenced."""
        suspects = [
            sid
            for sid, owner in zip(session_ids, owners, strict=True)
            if (local := self._local.get(sid)) is not None and local.meta_written and owner != local.process_id
        ]
        if not suspects:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for sid in suspects:
                pipe.hexists(session_key(sid), "terminal")
            ended = await pipe.execute()
        return [sid for sid, has_terminal in zip(suspects, ended, strict=True) if has_terminal]

    async def running_sessions(self) -> dict[str, str]:
        result = await self._redis.hgetall(RUNNING_KEY)  # type: ignore[misc]  # redis-py types sync|async
        return dict(result)

    async def heartbeat(self, process_id: str, info: dict[str, Any], ttl_s: int) -> None:
        self._last_heartbeat = (process_id, orjson.dumps(info), ttl_s)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(process_key(process_id), self._last_heartbeat[1], ex=ttl_s)
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
        self._last_heartbeat = None  # gone for good: no later write may put it back
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(process_key(process_id))
            pipe.srem(PROCESSES_KEY, process_id)
            await pipe.execute()

    async def lease_claim(self, lease: Lease, limit: int, ttl_s: float) -> bool:
        return (await self.lease_claim_many([(lease, limit)], ttl_s))[0]

    async def lease_claim_many(self, claims: list[tuple[Lease, int]], ttl_s: float) -> list[bool]:
        held: list[bool] = []
        for start in range(0, len(claims), RENEW_BATCH):
            batch = claims[start : start + RENEW_BATCH]
            keys = [lease_key(lease.kind, lease.user_id) for lease, _ in batch]
            args: list[str | int] = [int(ttl_s * 1000)]
            for lease, limit in batch:
                args += [lease.lease_id, limit]
            held += [bool(answer) for answer in await self._claim(keys=keys, args=args)]
        return held

    async def lease_renew(self, leases: list[Lease], ttl_s: float) -> None:
        for start in range(0, len(leases), RENEW_BATCH):
            batch = leases[start : start + RENEW_BATCH]
            keys = [lease_key(lease.kind, lease.user_id) for lease in batch]
            await self._renew(keys=keys, args=[int(ttl_s * 1000), *(lease.lease_id for lease in batch)])

    async def lease_release(self, lease: Lease) -> None:
        await self.lease_release_many([lease])

    async def lease_release_many(self, leases: list[Lease]) -> None:
        for start in range(0, len(leases), RENEW_BATCH):
            batch = leases[start : start + RENEW_BATCH]
            keys = [lease_key(lease.kind, lease.user_id) for lease in batch]
            await self._release(keys=keys, args=[lease.lease_id for lease in batch])

    async def lease_counts(self, user_id: int) -> dict[LeaseKind, int]:
        kinds = list(LeaseKind)
        counts = await self._count(keys=[lease_key(kind, user_id) for kind in kinds])
        return {kind: int(count) for kind, count in zip(kinds, counts, strict=True)}

    async def words_used(self, user_id: int, day: str) -> int:
        return await self._day_counts.submit(words_day_key(user_id, day))

    async def _day_counts_many(self, keys: list[str]) -> list[int]:
        return [int(count or 0) for count in await self._redis.mget(keys)]

    async def ping(self) -> None:
        await self._redis.ping()  # type: ignore[misc]

    async def aclose(self) -> None:
        await self._day_counts.aclose()
        await self._redis.aclose()
