"""HTTP surface: saved scripts, operator stats, health and readiness, the read-only admin."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.test import AsyncClient, Client
from rest_framework.test import APIClient

from streaming.models import Connection, StreamSession
from tests.conftest import access_for, make_user
from tests.wsclient import AppClient


def make_session(owner: Any, **fields: Any) -> StreamSession:
    values = {
        "topic": "pour-over coffee",
        "platform": "tiktok",
        "duration": 60,
        "provider": "mock",
        "status": "completed",
        "script": "Hook: brew it slowly.",
        "words": 4,
        **fields,
    }
    return StreamSession.objects.create(owner=owner, session_id=uuid.uuid4(), **values)


def api_for(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_for(user)}")
    return client


def bearer(user: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_for(user)}"}


# ---------------------------------------------------------------- scripts


def test_scripts_list_only_own(user: Any, other_user: Any) -> None:
    """GET /api/scripts/ lists the caller's scripts and never another user's."""
    mine = make_session(user, topic="mine")
    make_session(other_user, topic="theirs")
    body = api_for(user).get("/api/scripts/").json()
    assert body["count"] == 1
    assert [(row["id"], row["topic"]) for row in body["results"]] == [(mine.pk, "mine")]


def test_scripts_list_paginated(user: Any) -> None:
    """The list is paginated 20 a page, newest first, with a next link."""
    for n in range(25):
        make_session(user, topic=f"topic {n}")
    client = api_for(user)
    first = client.get("/api/scripts/").json()
    assert first["count"] == 25 and len(first["results"]) == 20 and first["next"]
    assert first["results"][0]["topic"] == "topic 24"
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 5 and second["next"] is None


def test_scripts_pages_of_equal_times_neither_repeat_nor_skip(user: Any) -> None:
    """Scripts saved in the same instant still page in one order: every script once over the pages."""
    rows = [make_session(user, topic=f"topic {n}") for n in range(25)]
    StreamSession.objects.filter(owner=user).update(created_at=rows[0].created_at)
    client = api_for(user)
    listed = [row["id"] for page in (1, 2) for row in client.get(f"/api/scripts/?page={page}").json()["results"]]
    assert listed == sorted((row.pk for row in rows), reverse=True)


def test_scripts_list_by_session_id(user: Any, other_user: Any) -> None:
    """?session_id= finds the caller's row of that stream, and nobody else's."""
    mine = make_session(user, topic="mine", status="running", words=0)
    make_session(user, topic="another")
    theirs = make_session(other_user, topic="theirs")
    client = api_for(user)
    found = client.get(f"/api/scripts/?session_id={mine.session_id}").json()
    assert [(row["id"], row["status"]) for row in found["results"]] == [(mine.pk, "running")]
    assert client.get(f"/api/scripts/?session_id={theirs.session_id}").json()["count"] == 0


def test_scripts_list_refuses_a_session_id_that_is_not_a_uuid(user: Any) -> None:
    """A session_id that is not a UUID is a 400 naming the parameter, not a server error."""
    response = api_for(user).get("/api/scripts/?session_id=not-a-uuid")
    assert response.status_code == 400
    assert response.json() == {"session_id": ["Must be a session id (a UUID)."]}


def test_scripts_list_needs_auth(user: Any) -> None:
    """Without a token the list is 401."""
    assert APIClient().get("/api/scripts/").status_code == 401


def test_script_detail_has_full_text_and_request(user: Any) -> None:
    """GET /api/scripts/<id>/ returns the full script and the request's fields."""
    row = make_session(user, topic="latte art", platform="youtube", duration=300, tone="warm", audience="baristas")
    body = api_for(user).get(f"/api/scripts/{row.pk}/").json()
    assert body["script"] == "Hook: brew it slowly."
    assert (body["topic"], body["platform"], body["duration"], body["tone"], body["audience"]) == (
        "latte art",
        "youtube",
        300,
        "warm",
        "baristas",
    )
    assert body["session_id"] == str(row.session_id) and body["status"] == "completed"


def test_script_detail_of_other_user_is_404(user: Any, other_user: Any) -> None:
    """Another user's script is a 404, the same as one that does not exist."""
    theirs = make_session(other_user)
    client = api_for(user)
    assert client.get(f"/api/scripts/{theirs.pk}/").status_code == 404
    assert client.get(f"/api/scripts/{theirs.pk + 1000}/").status_code == 404


async def test_streamed_script_appears_in_api(ws: AppClient, user: Any) -> None:
    """A script streamed over the socket is listed and readable with the text the socket sent."""
    await ws.generate(topic="cold brew")
    frames = await ws.recv_until({"stream.completed"})
    text = "".join(frame["text"] for frame in frames if frame["type"] == "stream.chunk")
    client = api_for(user)
    listed = (await database_sync_to_async(client.get)("/api/scripts/")).json()
    assert [row["id"] for row in listed["results"]] == [frames[-1]["script_id"]]
    detail = (await database_sync_to_async(client.get)(f"/api/scripts/{frames[-1]['script_id']}/")).json()
    assert detail["script"] == text and detail["topic"] == "cold brew" and detail["request_id"] == "r1"


# ---------------------------------------------------------------- stats, health


async def test_stats_anonymous_401(transactional_db: Any) -> None:
    """The stats endpoint refuses a request without a token with 401."""
    assert (await AsyncClient().get("/api/websocket/stats")).status_code == 401


async def test_stats_bad_token_401(user: Any) -> None:
    """A malformed token is 401 too."""
    response = await AsyncClient().get("/api/websocket/stats", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401


async def test_stats_non_staff_403(user: Any) -> None:
    """A valid token of a non-staff user is 403."""
    response = await AsyncClient().get("/api/websocket/stats", headers=bearer(user))
    assert response.status_code == 403


async def test_stats_staff_shape(user: Any, token: str) -> None:
    """Staff get connection and stream counts in the documented shape, live figures included."""
    staff = await database_sync_to_async(make_user)("ops", staff=True)
    await database_sync_to_async(make_session)(user, status="failed")
    await database_sync_to_async(make_session)(user, status="cancelled")
    client = AppClient(token=token)
    await client.open()
    response = await AsyncClient().get("/api/websocket/stats", headers=bearer(staff))
    await client.close()
    assert response.status_code == 200
    body = response.json()
    assert body["connections"] == {"active": 1, "total": 1}
    assert body["streams"] == {"running": 0, "completed": 0, "failed": 1, "cancelled": 1}


async def test_healthz(transactional_db: Any) -> None:
    """/healthz answers 200 while the process is up."""
    response = await AsyncClient().get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


async def test_readyz(transactional_db: Any) -> None:
    """/readyz answers 200 when the database and channel layer answer."""
    response = await AsyncClient().get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["checks"] == {"database": "ok", "channel_layer": "ok"}


# ---------------------------------------------------------------- admin


@pytest.fixture
def admin_client(user: Any, other_user: Any) -> Client:
    """A logged-in superuser, with a connection and a few sessions to look at."""
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root")
    connection = Connection.objects.create(user=user, client_address="10.0.0.7", user_agent="cli/1.0", close_code=1000)
    make_session(user, topic="espresso basics", connection=connection)
    make_session(other_user, topic="matcha whisking", status="failed", error_code="ai_timeout", platform="youtube")
    client = Client()
    client.force_login(root)
    return client


@pytest.mark.parametrize(
    ("path", "shown", "hidden"),
    [
        ("/admin/streaming/streamsession/", ["espresso basics", "matcha whisking"], []),
        ("/admin/streaming/streamsession/?q=espresso", ["espresso basics"], ["matcha whisking"]),
        ("/admin/streaming/streamsession/?q=bob", ["matcha whisking"], ["espresso basics"]),
        ("/admin/streaming/streamsession/?status__exact=failed", ["matcha whisking"], ["espresso basics"]),
        ("/admin/streaming/streamsession/?platform__exact=tiktok", ["espresso basics"], ["matcha whisking"]),
        ("/admin/streaming/streamsession/?error_code__exact=ai_timeout", ["matcha whisking"], ["espresso basics"]),
        ("/admin/streaming/connection/", ["10.0.0.7"], []),
        ("/admin/streaming/connection/?q=alice", ["10.0.0.7"], []),
        ("/admin/streaming/connection/?q=nobody", [], ["10.0.0.7"]),
        ("/admin/streaming/connection/?close_code=1000", ["10.0.0.7"], []),
    ],
)
def test_admin_changelists(admin_client: Client, path: str, shown: list[str], hidden: list[str]) -> None:
    """The connection and session changelists render for a superuser, with search and filters applied."""
    response = admin_client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    for text in shown:
        assert text in html
    for text in hidden:
        assert text not in html


def test_admin_is_read_only(admin_client: Client) -> None:
    """Operators audit sessions but cannot add them."""
    assert admin_client.get("/admin/streaming/streamsession/add/").status_code == 403


def test_admin_users_listed(admin_client: Client) -> None:
    """Users are managed through Django's own admin."""
    response = admin_client.get("/admin/auth/user/?q=alice")
    assert response.status_code == 200 and "alice" in response.content.decode()


def test_admin_needs_login(user: Any) -> None:
    """An anonymous visitor is sent to the admin login."""
    response = Client().get("/admin/streaming/streamsession/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
