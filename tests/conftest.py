"""Shared fixtures: users and tokens, a WebSocket client through the real ASGI application, registry cleanup."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import AsyncClient, Client
from rest_framework_simplejwt.tokens import AccessToken

from tests import openapi
from tests.servers import DaphneServer
from tests.wsclient import AppClient

pytest_plugins = ["tests.fixtures_openai", "tests.redisutil"]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "false")


@pytest.fixture(autouse=True)
def fast_streams(settings: Any) -> None:
    """Tests never wait on the mock's pacing unless they ask for it."""
    settings.STREAMING = {**settings.STREAMING, "MOCK_STREAM_DELAY_MS": 0}


@pytest.fixture(autouse=True)
async def registry_cleanup(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Every generation and loop a test started is cancelled and awaited before the next test."""
    if "transactional_db" in request.fixturenames:
        # Set the database up inside this fixture, so it is torn down after the cancelled streams save their end.
        request.getfixturevalue("transactional_db")
    yield
    from streaming.registry import close_registry

    await close_registry()
    # Server processes share the test database: their batched rows are committed before it is truncated,
    # or PostgreSQL's TRUNCATE and a row's deferred foreign-key check can deadlock.
    for server in tuple(DaphneServer.running):
        await asyncio.to_thread(server.settle)


def make_user(username: str, *, staff: bool = False, active: bool = True) -> Any:
    user = get_user_model().objects.create_user(username=username, password="pw-" + username)
    user.is_staff = staff
    user.is_active = active
    user.save()
    return user


def access_for(user: Any) -> str:
    """An access token as sign-in makes it, minus the login: no database write (a refresh token is recorded by the
    blacklist app, and an ORM write from a test's event loop leaves a connection open past the test database)."""
    return str(AccessToken.for_user(user))


@pytest.fixture
def user(transactional_db: Any) -> Any:
    return make_user("alice")


@pytest.fixture
def other_user(transactional_db: Any) -> Any:
    return make_user("bob")


@pytest.fixture
def token(user: Any) -> str:
    return access_for(user)


@pytest.fixture
async def ws(token: str) -> AsyncIterator[AppClient]:
    """An authenticated socket through the real application (origin check, JWT middleware, router)."""
    client = AppClient(token=token)
    await client.open()
    yield client
    await client.close()


ROOT = Path(__file__).resolve().parent.parent


def run_bench(module: str, *args: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    """`python -m bench.<module> <args>` as a developer runs it; the bench makes its own throwaway SQLite database."""
    env = {**os.environ, "BENCH_REDIS_URL": redis_url}
    env.pop("DATABASE_URL", None)
    command = [sys.executable, "-m", f"bench.{module}", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False)


OpenClient = Callable[..., Awaitable[AppClient]]


@pytest.fixture
async def connect(mode: str, token: str) -> AsyncIterator[OpenClient]:
    """Open sockets of the test's user (or of whoever's token is given), once the module's own `mode` fixture has
    set the store up; all are closed after the test."""
    clients: list[AppClient] = []

    async def open_client(as_token: str = token) -> AppClient:
        client = AppClient(token=as_token)
        await client.open()
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        await client.close()


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    """Poll a cheap condition until it holds (for state with no event to wait on), with a timeout."""
    async with asyncio.timeout(timeout):
        while not await database_sync_to_async(predicate)():
            await asyncio.sleep(0.02)


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    """Token-endpoint attempts are counted in the cache (local memory here): each test starts with none."""
    cache.clear()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """A cheap hasher for test users: PBKDF2's deliberate slowness is a quarter second per user."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def responses_match_openapi(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every answer a Django test client gets is checked against the OpenAPI schema (tests/openapi.py)."""
    monkeypatch.setattr(Client, "request", openapi.checked(Client.request))
    monkeypatch.setattr(AsyncClient, "request", openapi.checked_async(AsyncClient.request))


async def saved_row(session_id: str) -> Any:
    """The session's row once saved. An owner stores the terminal frame first and saves the row after (only if its
    end won: fencing), so a watcher on another process may see the end a moment before the row changes."""
    from streaming.models import StreamSession

    async with asyncio.timeout(5):  # no event crosses processes here: ask until the row left `running`
        while True:
            row = await database_sync_to_async(StreamSession.objects.get)(session_id=session_id)
            if row.status != "running":
                return row
            await asyncio.sleep(0.05)
