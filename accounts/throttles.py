"""Brute-force limits on the token endpoints: attempts per username and per client address, counted in the cache.

DRF's throttle interface (its view answers 429 with Retry-After), not its SimpleRateThrottle: that one reads a
list of past requests, appends and writes it back, so concurrent attempts on several processes each read the
same list and all pass. Here an attempt is one atomic INCR (with Redis behind the cache), so the 11th attempt is
refused whichever process it reaches and however many arrive at once.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from typing import Any, Protocol

import redis
from django.conf import settings
from django.core.cache import cache
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)


class LimiterUnavailable(APIException):
    """The attempt counter (Redis) does not answer: refuse rather than let guesses through uncounted."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Signing in is unavailable for a moment; try again shortly."
    default_code = "limiter_unavailable"


class AttemptView(Protocol):
    throttle_scope: str

    def attempt_username(self, request: Request) -> str | None: ...


def count_attempt(key: str, window_s: int) -> tuple[int, int]:
    """This attempt's number in the key's window, and the whole seconds until that window closes.

    A window opens at its key's first attempt (not on the clock's minute), so ten attempts are ten in any window.
    """
    now = time.time()
    cache.add(f"{key}:opened", now, window_s)
    cache.add(f"{key}:n", 0, window_s)
    try:
        count = cache.incr(f"{key}:n")
    except ValueError:  # the window closed between add and incr: this attempt is the first of the next one
        cache.add(f"{key}:n", 1, window_s)
        count = 1
    opened = cache.get(f"{key}:opened", now)
    return count, max(1, math.ceil(opened + window_s - now))


class AttemptThrottle(BaseThrottle):
    """Counts each request under one identity; past AUTH_RATE_LIMITS[limit] in a window it must wait."""

    limit: str

    def __init__(self) -> None:
        self.retry_after: int | None = None

    def identity(self, request: Request, view: AttemptView) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        limits = settings.AUTH_RATE_LIMITS
        allowed = limits[self.limit]
        identity = self.identity(request, view)
        if not allowed or not identity:
            return True
        digest = hashlib.sha256(identity.encode()).hexdigest()[:32]  # any length, no raw usernames in keys
        try:
            count, self.retry_after = count_attempt(
                f"auth:{view.throttle_scope}:{self.limit}:{digest}", limits["WINDOW_S"]
            )
        except redis.RedisError as exc:
            logger.warning("token endpoint refused: the attempt counter is unreachable (%s)", type(exc).__name__)
            raise LimiterUnavailable from exc
        if count > allowed:
            logger.info("%s attempts over the limit (%s): refused", view.throttle_scope, self.limit)
        return count <= allowed

    def wait(self) -> int | None:
        return self.retry_after


class UsernameThrottle(AttemptThrottle):
    """Guesses at one account, from however many addresses."""

    limit = "PER_USERNAME"

    def identity(self, request: Request, view: AttemptView) -> str | None:
        return view.attempt_username(request)


class AddressThrottle(AttemptThrottle):
    """Guesses from one client, at however many accounts (NUM_PROXIES says which address is the client's)."""

    limit = "PER_ADDRESS"

    def identity(self, request: Request, view: AttemptView) -> str | None:
        return self.get_ident(request)
