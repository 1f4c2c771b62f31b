"""Quotas in embedded mode (one process, the in-memory store), through the real application: sockets per user
(4429), running streams per user, the daily word budget, GET /api/usage/ and the admin's daily usage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import AsyncClient, Client
from django.utils import timezone

from streaming.models import DailyUsage
from streaming.protocol import CLOSE_REASONS, CloseCode
from tests.conftest import access_for, make_user
from tests.wsclient import AppClient

pytestmark = pytest.mark.django_db(transaction=True)

TERMINAL = {"stream.completed", "stream.failed", "stream.cancelled"}


@pytest.fixture
def quotas(settings: Any) -> dict[str, Any]:
    """Small limits, and mock words 20 ms apart so a stream is still running while the test acts on it."""
    knobs = {"MAX_CONNECTIONS_PER_USER": 2, "MAX_STREAMS_PER_USER": 2, "MOCK_STREAM_DELAY_MS": 20}
    settings.STREAMING = {**settings.STREAMING, **knobs}
    return settings.STREAMING


async def opened(token: str) -> AppClient:
    client = AppClient(token=token)
    await client.open()
    return client


def next_midnight_iso() -> str:
    today = datetime.now(UTC).date()
    return f"{today + timedelta(days=1)}T00:00:00Z"


async def usage(token: str) -> dict[str, Any]:
    response = await AsyncClient().get("/api/usage/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


async def test_socket_over_the_limit_is_closed_with_4429(quotas: Any, token: str) -> None:
    """A user's third socket (limit 2) is accepted, then closed with 4429 and its reason, before any frame."""
    first, second = await opened(token), await opened(token)
    third = AppClient(token=token)
    connected, _subprotocol = await third.comm.connect(timeout=5)
    assert connected
    message = await third.comm.receive_output(5)
    reason = CLOSE_REASONS[CloseCode.TOO_MANY_CONNECTIONS]
    assert message == {"type": "websocket.close", "code": 4429, "reason": reason}
    await first.close()
    await second.close()


async def test_a_closed_socket_frees_its_place(quotas: Any, token: str) -> None:
    """Once one of the two sockets closes, a new one is accepted at once."""
    first, second = await opened(token), await opened(token)
    await first.close()
    again = await opened(token)
    assert again.established["type"] == "connection.established"
    await second.close()
    await again.close()


async def test_other_users_sockets_do_not_count(quotas: Any, token: str, other_user: Any) -> None:
    """Alice's two sockets leave Bob's quota whole."""
    mine = [await opened(token), await opened(token)]
    bobs = await opened(access_for(other_user))
    assert bobs.established["user"]["username"] == "bob"
    for client in [*mine, bobs]:
        await client.close()


async def test_stream_over_the_user_limit_across_sockets(quotas: Any, token: str) -> None:
    """Two running streams on two sockets (limit 2): a third on either is too_many_streams; a cancel frees one."""
    first, second = await opened(token), await opened(token)
    running = await first.generate(duration=60)
    await second.generate(duration=60)
    await first.send({"type": "generate", "request_id": "over", "topic": "tea", "platform": "tiktok", "duration": 30})
    # The running stream's words may come first: the claim is answered by the next batch of claims (a loop pass).
    error = (await first.recv_until({"error"}))[-1]
    assert (error["code"], error["request_id"]) == ("too_many_streams", "over")
    await first.send({"type": "cancel", "session_id": running["session_id"]})
    await first.recv_until({"stream.cancelled"})
    assert (await first.generate(request_id="again"))["request_id"] == "again"
    await first.close()
    await second.close()


async def test_daily_budget_refuses_generate_with_resets_at(settings: Any, token: str, other_user: Any) -> None:
    """Past USER_DAILY_WORD_LIMIT, generate gets quota_exceeded saying when it resets; others are not affected."""
    settings.STREAMING = {**settings.STREAMING, "DAILY_WORD_LIMIT": 100}
    ws = await opened(token)
    started = await ws.generate(duration=60)  # 150 words: within budget when it starts, so it runs to its end
    completed = (await ws.recv_until(TERMINAL))[-1]
    assert completed["type"] == "stream.completed" and completed["words"] == started["estimated_words"] == 150
    await ws.send({"type": "generate", "request_id": "more", "topic": "tea", "platform": "tiktok", "duration": 30})
    error = await ws.recv()
    assert error == {
        "type": "error",
        "code": "quota_exceeded",
        "message": "You have used today's budget of 100 words; it resets at midnight UTC.",
        "resets_at": next_midnight_iso(),
        "request_id": "more",
    }
    bob = await opened(access_for(other_user))
    assert (await bob.generate())["type"] == "stream.started"
    await ws.close()
    await bob.close()


async def test_words_count_as_streamed_not_as_estimated(quotas: Any, token: str) -> None:
    """A stream cancelled after a few words counts those words, not its estimate of 150."""
    ws = await opened(token)
    started = await ws.generate(duration=60)
    await ws.chunks_up_to(5)
    await ws.send({"type": "cancel", "session_id": started["session_id"]})
    cancelled = (await ws.recv_until({"stream.cancelled"}))[-1]
    assert 5 <= cancelled["seq"] < 150
    assert (await usage(token))["words"]["used"] == cancelled["seq"]
    await ws.close()


async def test_usage_shows_the_users_own_figures(settings: Any, token: str, other_user: Any) -> None:
    """GET /api/usage/: words used of the limit with resets_at, running streams and open sockets, this user's only."""
    settings.STREAMING = {**settings.STREAMING, "DAILY_WORD_LIMIT": 1000, "MOCK_STREAM_DELAY_MS": 20}
    ws = await opened(token)
    await ws.generate(duration=10)
    await ws.recv_until(TERMINAL)  # 25 words
    await ws.generate(duration=60)  # still running
    bob = await opened(access_for(other_user))
    await bob.generate(duration=10)
    await bob.recv_until(TERMINAL)
    body = await usage(token)
    words = body.pop("words")
    assert (words["limit"], words["resets_at"]) == (1000, next_midnight_iso())
    assert 25 <= words["used"] < 25 + 150, "the running stream counts its words so far, not its estimate"
    assert body == {"streams": {"running": 1, "limit": 5}, "sockets": {"open": 1, "limit": 20}}
    await ws.close()
    await bob.close()


async def test_usage_without_limits_says_null(token: str) -> None:
    """With no daily budget set, the limit is null (no limit) and nothing is used yet."""
    body = await usage(token)
    assert body["words"] == {"used": 0, "limit": None, "resets_at": next_midnight_iso()}


async def test_usage_needs_a_valid_token() -> None:
    """No token, or a bad one: 401."""
    assert (await AsyncClient().get("/api/usage/")).status_code == 401
    response = await AsyncClient().get("/api/usage/", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401


async def test_each_generation_adds_to_the_daily_usage_row(token: str, user: Any) -> None:
    """Operators' record: one row per user per UTC day, with the words and count of the generations that ended."""
    ws = await opened(token)
    for duration in (10, 20):
        await ws.generate(duration=duration)
        await ws.recv_until(TERMINAL)
    await ws.close()
    row = await database_sync_to_async(DailyUsage.objects.get)(user=user)
    assert (row.day, row.words, row.generations) == (timezone.now().date(), 25 + 50, 2)


def test_admin_lists_usage_per_user_with_what_runs_now(settings: Any) -> None:
    """The admin's Daily usage: words of the budget, generations, and today's running streams and open sockets."""
    from streaming.models import Connection, StreamSession

    settings.STREAMING = {**settings.STREAMING, "DAILY_WORD_LIMIT": 20000}
    alice, bob = make_user("alice"), make_user("bob")
    today = timezone.now().date()
    DailyUsage.objects.create(user=alice, day=today, words=4210, generations=3)
    DailyUsage.objects.create(user=bob, day=today - timedelta(days=1), words=150, generations=1)
    StreamSession.objects.create(owner=alice, topic="t", platform="tiktok", duration=30, provider="mock")
    Connection.objects.create(user=alice)
    Connection.objects.create(user=alice)
    Connection.objects.create(user=alice, closed_at=timezone.now(), close_code=1000)
    root = make_user("root", staff=True)
    root.is_superuser = True
    root.save()
    client = Client()
    client.force_login(root)
    response = client.get("/admin/streaming/dailyusage/")
    assert response.status_code == 200
    rows = response.content.decode().split("<tr>")[1:]
    alice_row = next(row for row in rows if ">alice<" in row)
    assert "4,210 / 20,000 (21%)" in alice_row
    assert '<td class="field-streams_now">1</td>' in alice_row
    assert '<td class="field-sockets_now">2</td>' in alice_row
    bob_row = next(row for row in rows if ">bob<" in row)
    assert "150 / 20,000 (0%)" in bob_row and '<td class="field-streams_now">-</td>' in bob_row


def test_admin_names_4429() -> None:
    """Operators read 4429 on a connection's row as what it is, with the reason the server sent."""
    from streaming.admin import close_code_meaning

    assert close_code_meaning(4429) == (
        "too many connections",
        "Too many open connections for this user; close one first.",
    )
