"""A connection pool for Django's RedisCache that follows the master the Redis Sentinels name."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from redis.sentinel import Sentinel, SentinelConnectionPool


class SentinelPool(SentinelConnectionPool):
    """RedisCache builds pools with `from_url(LOCATION, **OPTIONS)`; here the URL gives only password and db."""

    @classmethod
    def from_url(  # type: ignore[override]  # Sentinel options instead of a host to connect to
        cls, url: str, *, sentinels: list[tuple[str, int]], master_name: str, **options: Any
    ) -> SentinelPool:
        parsed = urlparse(url)
        manager = Sentinel(sentinels, socket_connect_timeout=options.get("socket_connect_timeout", 2))
        return cls(master_name, manager, db=int(parsed.path.strip("/") or 0), password=parsed.password, **options)
