"""A socket's authentication over its whole life, in-process (embedded mode): expiry, the auth frame, revocation.

The same against real Daphne processes on Redis: tests/test_token_lifetime_e2e.py and test_revocation_e2e.py.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from streaming.protocol import AUTH_CLOSES, TERMINAL_TYPES, AuthCause, CloseCode
from tests.conftest import access_for
from tests.wsclient import AppClient

# Closes are promised within 5 s of the event (expiry, revocation).
WITHIN_S = 5.0


def access(user: Any, lifetime_s: float = 900) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(seconds=lifetime_s))
    return str(token)


def exp_of(token: str) -> int:
    return int(AccessToken(token, verify=False)["exp"])  # type: ignore[arg-type]


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


async def opened(token: str) -> AppClient:
    client = AppClient(token=token)
    await client.open()
    return client


async def until_closed(client: AppClient, timeout: float = WITHIN_S + 3) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The close message, and every frame before it (pings included)."""
    frames = []
    deadline = time.monotonic() + timeout
    while True:
        message = await client.comm.receive_output(max(0.01, deadline - time.monotonic()))
        if message["type"] == "websocket.close":
            return message, frames
        frames.append(orjson.loads(message["text"]))


async def pass_the_clock(epoch: float) -> None:
    """Until the wall clock passes `epoch` (an expiry has no event to wait on)."""
    async with asyncio.timeout(epoch - time.time() + 2):
        while time.time() <= epoch:
            await asyncio.sleep(0.05)


def close_of(cause: AuthCause) -> dict[str, Any]:
    code, reason = AUTH_CLOSES[cause]
    return {"type": "websocket.close", "code": int(code), "reason": reason}


# ---------------------------------------------------------------- expiry


async def test_established_says_when_the_token_expires(user: Any) -> None:
    """connection.established carries the socket's token expiry, ISO 8601 UTC."""
    token = access(user, 600)
    client = await opened(token)
    await client.close()
    assert client.established["token_expires_at"] == iso(exp_of(token))


async def test_socket_closes_at_expiry_with_its_reason(user: Any) -> None:
    """No refresh: 4401 'access token expired' within 5 s of the token's exp, not before."""
    token = access(user, 2)
    client = await opened(token)
    close, _ = await until_closed(client)
    closed_at = time.time()
    assert close == close_of(AuthCause.TOKEN_EXPIRED)
    assert exp_of(token) <= closed_at < exp_of(token) + WITHIN_S


async def test_no_frame_is_handled_after_expiry(user: Any) -> None:
    """A generate sent after the token's exp, before the tick closes the socket, starts nothing: 4401 instead."""
    token = access(user, 1)
    client = await opened(token)
    await pass_the_clock(exp_of(token))
    await client.send({"type": "generate", "topic": "late", "platform": "tiktok", "duration": 30})
    close, frames = await until_closed(client)
    assert close["code"] == 4401
    assert all(frame["type"] == "ping" for frame in frames), frames


async def test_generation_outlives_the_expired_socket(user: Any, settings: Any) -> None:
    """Closed at expiry mid-stream: the generation goes on; a fresh token resumes it, every seq once."""
    settings.STREAMING = {**settings.STREAMING, "MOCK_STREAM_DELAY_MS": 25}
    client = await opened(access(user, 2))
    started = await client.generate(duration=60)
    close, frames = await until_closed(client)
    assert close["code"] == 4401
    seen = [frame["seq"] for frame in frames if frame["type"] == "stream.chunk"]
    assert seen and seen[-1] < started["estimated_words"], "the stream ended before the token did"
    again = await opened(access(user))
    await again.resume(started["session_id"], last_seq=seen[-1])
    rest = await again.recv_until(TERMINAL_TYPES)
    await again.close()
    assert rest[-1]["type"] == "stream.completed"
    chunks = seen + [frame["seq"] for frame in rest if frame["type"] == "stream.chunk"]
    assert chunks == list(range(1, started["estimated_words"] + 1))


# ---------------------------------------------------------------- the auth frame


async def test_auth_extends_the_socket(user: Any) -> None:
    """auth with a fresh token of the same user: auth.ok with its expiry; the socket outlives the first token."""
    first = access(user, 2)
    client = await opened(first)
    second = access(user, 60)
    await client.send({"type": "auth", "token": second})
    assert await client.recv() == {"type": "auth.ok", "token_expires_at": iso(exp_of(second))}
    await pass_the_clock(exp_of(first) + 1.5)  # past the first expiry and a tick of the registry
    await client.send({"type": "ping", "id": "alive"})
    assert (await client.recv())["type"] == "pong"
    await client.close()


@pytest.mark.parametrize(
    ("make", "cause"),
    [
        (lambda user, other: access(other), AuthCause.OTHER_USER),
        (lambda user, other: "not.a.token", AuthCause.TOKEN_INVALID),
        (lambda user, other: access(user, -30), AuthCause.AUTH_TOKEN_EXPIRED),
        (lambda user, other: str(AccessToken.for_user(user)).rsplit(".", 1)[0] + ".forged", AuthCause.TOKEN_INVALID),
        (lambda user, other: str(RefreshToken.for_user(user)), AuthCause.TOKEN_INVALID),
    ],
    ids=["other user", "garbage", "expired", "bad signature", "refresh token"],
)
async def test_auth_with_a_wrong_token_closes(user: Any, other_user: Any, make: Any, cause: AuthCause) -> None:
    """auth with another user's, a broken, an expired or a forged token: 4401 with the reason that says which."""
    client = await opened(access(user))
    await client.send({"type": "auth", "token": make(user, other_user)})
    close, frames = await until_closed(client)
    assert close == close_of(cause)
    assert frames == []


async def test_auth_without_a_token_is_a_bad_request(user: Any) -> None:
    """An auth frame without a token string is answered bad_request; the socket stays open."""
    client = await opened(access(user))
    await client.send({"type": "auth", "token": 7, "request_id": "a1"})
    frame = await client.recv()
    assert (frame["type"], frame["code"], frame["request_id"]) == ("error", "bad_request", "a1")
    await client.send({"type": "ping", "id": 2})
    assert (await client.recv())["type"] == "pong"
    await client.close()


# ---------------------------------------------------------------- revocation (the registry's database pass)


async def test_deactivation_by_orm_update_closes_with_4403(user: Any, other_user: Any) -> None:
    """User.objects.filter().update(is_active=False), which sends no signal: 4403 within 5 s; bob stays."""
    alice, bob = await opened(access(user)), await opened(access_for(other_user))
    await database_sync_to_async(get_user_model().objects.filter(pk=user.pk).update)(is_active=False)
    asked = time.monotonic()
    close, _ = await until_closed(alice)
    assert close == close_of(AuthCause.DEACTIVATED) and close["code"] == CloseCode.FORBIDDEN
    assert time.monotonic() - asked < WITHIN_S
    await bob.send({"type": "ping", "id": 3})
    assert (await bob.recv())["type"] == "pong"
    await bob.close()


async def test_password_change_closes_with_4401(user: Any) -> None:
    """set_password + save: every socket of the user closes with 4401 'password changed' within 5 s."""
    client = await opened(access(user))

    def change() -> None:
        user.set_password("pw-changed")
        user.save()

    await database_sync_to_async(change)()
    asked = time.monotonic()
    close, _ = await until_closed(client)
    assert close == close_of(AuthCause.PASSWORD_CHANGED)
    assert time.monotonic() - asked < WITHIN_S


async def test_refreshed_socket_is_checked_on_its_new_token(user: Any) -> None:
    """After an auth frame the pass checks the new token: a password change still closes the socket."""
    client = await opened(access(user, 60))
    await client.send({"type": "auth", "token": access(user, 120)})
    assert (await client.recv())["type"] == "auth.ok"

    def change() -> None:
        user.set_password("pw-changed")
        user.save()

    await database_sync_to_async(change)()
    close, _ = await until_closed(client)
    assert close == close_of(AuthCause.PASSWORD_CHANGED)
