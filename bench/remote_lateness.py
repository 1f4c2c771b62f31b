"""How late words reach a watcher on another process in Redis mode (a measurement, not a test).

Two Daphne processes on one Redis; a producer socket on the first generates a 200-word script at 25 ms a word,
a watcher socket on the second resumes it from seq 0 as soon as it starts. Lateness of a word = when the
watcher got it minus when the producer (fed directly by the generation) got it.

    REDIS_URL=redis://127.0.0.1:6379/14 .venv/bin/python bench/remote_lateness.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
from websockets import ClientConnection

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_PATH = Path(tempfile.gettempdir()) / "cn-remote-lateness.sqlite3"
os.environ["DATABASE_URL"] = f"sqlite:///{DB_PATH}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatornexus.settings")
REDIS_URL = os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
WORDS, DELAY_MS = 200, 25


def prepare() -> str:
    """A fresh database with one user; its access token."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework_simplejwt.tokens import RefreshToken

    DB_PATH.unlink(missing_ok=True)
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user(username="bench", password="bench-pw")
    return str(RefreshToken.for_user(user).access_token)


async def frames_until_end(connection: ClientConnection, arrivals: dict[int, float]) -> None:
    while True:
        frame = orjson.loads(await connection.recv())
        if frame["type"] == "stream.chunk":
            assert frame["seq"] not in arrivals, f"seq {frame['seq']} twice"
            arrivals[frame["seq"]] = time.monotonic()
        elif frame["type"].startswith("stream.") and frame["type"] != "stream.started":
            return


async def measure(token: str, one_url: str, two_url: str) -> tuple[dict[int, float], dict[int, float]]:
    import websockets

    produced: dict[int, float] = {}
    watched: dict[int, float] = {}
    async with (
        websockets.connect(f"{one_url}?token={token}") as producer,
        websockets.connect(f"{two_url}?token={token}") as watcher,
    ):
        await producer.recv(), await watcher.recv()
        duration = WORDS * 60 // 150
        request = {"type": "generate", "topic": "pour-over coffee", "platform": "tiktok", "duration": duration}
        await producer.send(orjson.dumps(request).decode())
        started = orjson.loads(await producer.recv())
        await watcher.send(
            orjson.dumps({"type": "resume", "session_id": started["session_id"], "last_seq": 0}).decode()
        )
        await asyncio.gather(frames_until_end(producer, produced), frames_until_end(watcher, watched))
    return produced, watched


def main() -> None:
    token = prepare()
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    from tests.servers import DaphneServer

    env = {"REDIS_URL": REDIS_URL, "MOCK_STREAM_DELAY_MS": str(DELAY_MS), "DATABASE_URL": os.environ["DATABASE_URL"]}
    with DaphneServer(env) as one, DaphneServer(env) as two:
        produced, watched = asyncio.run(measure(token, one.ws_url, two.ws_url))
    assert sorted(watched) == list(range(1, WORDS + 1)), f"watcher got {len(watched)} of {WORDS} words"
    late_ms = sorted((watched[seq] - produced[seq]) * 1000 for seq in produced)
    p95 = late_ms[int(len(late_ms) * 0.95) - 1]
    print(
        f"{len(watched)}/{WORDS} words at {DELAY_MS} ms/word reached the remote watcher exactly once; "
        f"lateness vs the producer's socket: median {statistics.median(late_ms):.1f} ms, "
        f"p95 {p95:.1f} ms, max {late_ms[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
