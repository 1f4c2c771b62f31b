"""The Redis the tests use (REDIS_TEST_URL), flushed per test; unreachable fails loudly in CI, skips elsewhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
import redis

from creatornexus.settings import redis_channel_layers
from tests.servers import free_port

DEFAULT_REDIS_TEST_URL = "redis://127.0.0.1:6379/15"


def redis_test_url() -> str:
    return os.environ.get("REDIS_TEST_URL", DEFAULT_REDIS_TEST_URL)


def unavailable(reason: str) -> None:
    """CI must run every Redis test: there a missing Redis is a failure, elsewhere a skip that says why."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so Redis tests may not skip)", pytrace=False)
    pytest.skip(reason)


def flushed_redis() -> str:
    """The test Redis, emptied; its URL."""
    url = redis_test_url()
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        unavailable(f"Redis at {url} is unreachable ({type(exc).__name__}); start redis-server or set REDIS_TEST_URL")
    finally:
        client.close()
    return url


def redis_server_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        unavailable("redis-server is not installed; the Redis outage test starts its own")
    assert path is not None
    return path


def channel_layers_for(url: str, sentinels: list[tuple[str, int]] | None = None, master: str = "") -> dict[str, Any]:
    """The channels-redis layer exactly as settings.py configures it."""
    return redis_channel_layers(url, sentinels or [], master)


SENTINEL_MASTER = "cnmaster"
SENTINEL_START_TIMEOUT_S = 10


@pytest.fixture(scope="session")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[str, int]]]:
    """A real Redis Sentinel (redis-server --sentinel) naming the test Redis as master `cnmaster`."""
    binary = redis_server_binary()
    target = urlparse(redis_test_url())
    host, port = target.hostname or "127.0.0.1", target.port or 6379
    sentinel_port = free_port()
    workdir = tmp_path_factory.mktemp("sentinel")
    config = workdir / "sentinel.conf"
    config.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\ndir {workdir}\n"
        f"sentinel monitor {SENTINEL_MASTER} {host} {port} 1\n"
        f"sentinel down-after-milliseconds {SENTINEL_MASTER} 60000\n"
    )
    process = subprocess.Popen(
        [binary, str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    client = redis.Redis(host="127.0.0.1", port=sentinel_port, socket_connect_timeout=1)
    deadline = time.monotonic() + SENTINEL_START_TIMEOUT_S
    try:
        while True:
            try:
                if client.execute_command("SENTINEL", "get-master-addr-by-name", SENTINEL_MASTER):
                    break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)
        yield [("127.0.0.1", sentinel_port)]
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)
