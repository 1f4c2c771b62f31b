"""The Redis the tests use (REDIS_TEST_URL), flushed per test; unreachable fails loudly in CI, skips elsewhere."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest
import redis

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


def channel_layers_for(url: str) -> dict[str, Any]:
    """The channels-redis layer as settings.py configures it for REDIS_URL."""
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": url, "socket_timeout": None, "socket_connect_timeout": 5}],
                "capacity": 1500,
                "expiry": 30,
                "group_expiry": 3600,
            },
        }
    }
