"""Brute force: the token endpoints count attempts per username and per client address; past the limit, 429."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from creatornexus.settings import redis_caches
from tests.redisutil import SENTINEL_MASTER, flushed_redis, redis_test_url
from tests.servers import DaphneServer

TOKEN = "/api/auth/token/"
REFRESH = "/api/auth/token/refresh/"
WINDOW_S = 60  # the defaults: 10 per username, 60 per address, in a minute
PER_USERNAME = 10
PER_ADDRESS = 60


def login(password: str, username: str = "alice", address: str = "203.0.113.7", **headers: str) -> Response:
    body = {"username": username, "password": password}
    response: Response = APIClient().post(TOKEN, body, format="json", REMOTE_ADDR=address, **headers)
    return response


def refresh(raw: str, address: str = "203.0.113.7") -> Response:
    response: Response = APIClient().post(REFRESH, {"refresh": raw}, format="json", REMOTE_ADDR=address)
    return response


def assert_throttled(response: Response, window_s: int = WINDOW_S) -> int:
    """429 with a Retry-After of whole seconds within the window; the seconds."""
    assert response.status_code == 429, response.content
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= window_s
    assert "access" not in response.json()
    return retry_after


class Clock:
    """time.time() under the test's hand: the counter's window and the cache's expiry move together."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fake = Clock()
    monkeypatch.setattr(time, "time", fake)
    yield fake


# ---------------------------------------------------------------- per username


def test_eleventh_wrong_password_for_a_username_is_429(user: Any) -> None:
    """Ten wrong passwords are 401; the 11th within the minute is 429 with Retry-After."""
    for _ in range(PER_USERNAME):
        assert login("wrong").status_code == 401
    assert_throttled(login("wrong"))


def test_right_password_is_refused_too_while_throttled(user: Any) -> None:
    """Once throttled the right password gets 429 as well: the answer tells a guesser nothing."""
    for _ in range(PER_USERNAME):
        login("wrong")
    assert_throttled(login("pw-alice"))


def test_username_limit_holds_across_addresses(user: Any) -> None:
    """Guesses at one account from ten addresses: the 11th, from an 11th address, is 429."""
    for i in range(PER_USERNAME):
        assert login("wrong", address=f"198.51.100.{i}").status_code == 401
    assert_throttled(login("wrong", address="198.51.100.99"))


def test_other_usernames_are_not_throttled(user: Any, other_user: Any) -> None:
    """alice's used-up attempts do not touch bob's."""
    for _ in range(PER_USERNAME + 1):
        login("wrong")
    assert login("pw-bob", username="bob", address="192.0.2.1").status_code == 200


def test_right_password_works_after_the_window(user: Any, clock: Clock) -> None:
    """Retry-After is exact: a second before it, still 429; at it, the right password signs in."""
    clock.advance(0.4)  # the window opens mid-second: Retry-After rounds up
    for _ in range(PER_USERNAME):
        login("wrong")
        clock.advance(1)
    retry_after = assert_throttled(login("wrong"))
    assert retry_after == WINDOW_S - PER_USERNAME  # the window opened at the first attempt, ten seconds ago
    clock.advance(retry_after - 1)
    assert_throttled(login("pw-alice"))
    clock.advance(1)
    response = login("pw-alice")
    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}


# ---------------------------------------------------------------- per address


def test_address_limit_spans_usernames(transactional_db: Any) -> None:
    """One address guessing at many accounts: 60 attempts, then 429 whatever the username."""
    for i in range(PER_ADDRESS):
        assert login("wrong", username=f"user{i}").status_code == 401
    assert_throttled(login("wrong", username="someone-new"))
    assert login("wrong", username="someone-new", address="192.0.2.44").status_code == 401, "other addresses pass"


def test_address_comes_from_the_trusted_proxy_hop(transactional_db: Any, settings: Any) -> None:
    """Behind one proxy (NUM_PROXIES=1) clients are told apart by X-Forwarded-For, not by the proxy's address."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = "10.0.0.2"
    for i in range(PER_ADDRESS):
        login("wrong", username=f"user{i}", address=proxy, HTTP_X_FORWARDED_FOR="spoofed, 203.0.113.9")
    assert_throttled(login("wrong", username="x", address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.9"))
    assert login("wrong", username="x", address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.10").status_code == 401


def test_limits_are_settings(user: Any, settings: Any) -> None:
    """AUTH_RATE_LIMITS sets the numbers; 0 switches a limit off."""
    settings.AUTH_RATE_LIMITS = {"WINDOW_S": 30, "PER_USERNAME": 2, "PER_ADDRESS": 0}
    login("wrong")
    login("wrong")
    assert_throttled(login("wrong"), window_s=30)
    for i in range(PER_ADDRESS + 5):
        assert login("wrong", username=f"user{i}").status_code == 401


# ---------------------------------------------------------------- refresh


def test_refresh_is_throttled_per_user(user: Any) -> None:
    """The user of a genuine refresh token: 10 refreshes from 10 addresses, the 11th is 429."""
    raw = str(RefreshToken.for_user(user))
    for i in range(PER_USERNAME):
        response = refresh(raw, address=f"198.51.100.{i}")
        assert response.status_code == 200
        raw = response.json()["refresh"]  # refresh tokens rotate: the one used is blacklisted
    assert_throttled(refresh(raw, address="198.51.100.99"))


def test_forged_refresh_tokens_do_not_use_up_a_users_attempts(user: Any) -> None:
    """Garbage naming alice counts against the sender's address only; alice still refreshes."""
    for i in range(PER_USERNAME + 1):
        assert refresh(f"garbage-{i}", address=f"198.51.100.{i}").status_code == 401
    assert refresh(str(RefreshToken.for_user(user))).status_code == 200


def test_refresh_is_throttled_per_address(transactional_db: Any) -> None:
    """One address sending refresh tokens: the 61st attempt is 429."""
    for i in range(PER_ADDRESS):
        assert refresh(f"garbage-{i}").status_code == 401
    assert_throttled(refresh("garbage"))


# ---------------------------------------------------------------- Redis behind the cache


@pytest.mark.redis
def test_counter_unreachable_refuses_with_503(user: Any, settings: Any) -> None:
    """If Redis does not answer, sign-in is refused (503) rather than left uncounted."""
    settings.CACHES = redis_caches("redis://127.0.0.1:1/0", [], "")
    response = login("pw-alice")
    assert response.status_code == 503
    assert "access" not in response.json()


@pytest.mark.redis
def test_limit_holds_through_sentinel(user: Any, settings: Any, sentinel: list[tuple[str, int]]) -> None:
    """With REDIS_SENTINELS the counter lives on the master the Sentinels name."""
    flushed_redis()
    settings.CACHES = redis_caches(redis_test_url(), sentinel, SENTINEL_MASTER)
    for _ in range(PER_USERNAME):
        assert login("wrong").status_code == 401
    assert_throttled(login("wrong"))


def post(server: DaphneServer, path: str, body: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    """A POST over a real socket: (status, headers, JSON body)."""
    request = urllib.request.Request(
        f"{server.http_url}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


@pytest.mark.e2e
@pytest.mark.redis
def test_limit_holds_across_two_daphne_processes(user: Any) -> None:
    """Ten wrong passwords spread over two processes on one Redis: the 11th, on either, is 429."""
    env = {"REDIS_URL": flushed_redis()}
    with DaphneServer(env) as a, DaphneServer(env) as b:
        for i in range(PER_USERNAME):
            status, _, _ = post((a, b)[i % 2], TOKEN, {"username": "alice", "password": "wrong"})
            assert status == 401
        for server in (a, b):
            status, headers, body = post(server, TOKEN, {"username": "alice", "password": "pw-alice"})
            assert status == 429, body
            assert 1 <= int(headers["Retry-After"]) <= WINDOW_S
            assert "access" not in body
