"""Operators act from admin (in-process, embedded mode): cancel running sessions, sign a user out, deactivate.

Across processes on Redis: tests/test_auth_cluster.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import AsyncClient

from streaming.models import StreamSession
from streaming.protocol import AUTH_CLOSES, TERMINAL_TYPES, AuthCause
from tests.conftest import access_for, make_user, wait_for
from tests.test_logout import sign_in
from tests.test_socket_auth import close_of, opened, until_closed

SESSIONS = "/admin/streaming/streamsession/"
USERS = "/admin/auth/user/"


async def operator(username: str = "root", *, superuser: bool = True, perms: tuple[str, ...] = ()) -> AsyncClient:
    def make() -> Any:
        model = get_user_model()
        if superuser:
            return model.objects.create_superuser(username, f"{username}@example.com", f"pw-{username}")
        user = make_user(username, staff=True)
        user.user_permissions.add(*Permission.objects.filter(codename__in=perms))
        return user

    client = AsyncClient()
    await client.aforce_login(await database_sync_to_async(make)())
    return client


async def act(client: AsyncClient, changelist: str, action: str, *pks: Any) -> str:
    """Run an admin action on the selected rows; the page it lands on, as text."""
    response = await client.post(changelist, {"action": action, "_selected_action": [str(pk) for pk in pks]})
    assert response.status_code == 302, response.status_code
    follow = await client.get(response["Location"])
    return follow.content.decode()


async def running_row(session_id: str) -> StreamSession:
    await wait_for(lambda: StreamSession.objects.filter(session_id=session_id).exists())
    return await StreamSession.objects.aget(session_id=session_id)


@pytest.fixture
def slow_streams(settings: Any) -> None:
    settings.STREAMING = {**settings.STREAMING, "MOCK_STREAM_DELAY_MS": 20}


async def test_cancel_running_session_from_admin(user: Any, slow_streams: None) -> None:
    """The action stops a running stream: its socket gets stream.cancelled, the row says cancelled."""
    client = await opened(access_for(user))
    started = await client.generate(duration=120)
    await client.chunks_up_to(3)
    row = await running_row(started["session_id"])
    page = await act(await operator(), SESSIONS, "cancel_running", row.pk)
    frames = await client.recv_until(TERMINAL_TYPES, timeout=3)
    await client.close()
    assert frames[-1]["type"] == "stream.cancelled"
    assert "Asked 1 running session(s) to stop" in page
    await wait_for(lambda: StreamSession.objects.get(pk=row.pk).status == "cancelled")


async def test_cancel_leaves_ended_sessions_alone(user: Any) -> None:
    """Selecting a session that already ended changes nothing and says so."""
    client = await opened(access_for(user))
    started = await client.generate(duration=10)
    await client.recv_until(TERMINAL_TYPES)
    await client.close()
    row = await running_row(started["session_id"])
    await wait_for(lambda: StreamSession.objects.get(pk=row.pk).status == "completed")
    page = await act(await operator(), SESSIONS, "cancel_running", row.pk)
    assert "Asked 0 running session(s) to stop" in page and "had already ended" in page


async def test_viewers_cannot_cancel(user: Any, slow_streams: None) -> None:
    """A staff member who may only view sessions is not offered the action, and posting it stops nothing."""
    viewer = await operator("viewer", superuser=False, perms=("view_streamsession",))
    listing = (await viewer.get(SESSIONS)).content.decode()
    assert "cancel_running" not in listing
    client = await opened(access_for(user))
    started = await client.generate(duration=60)
    row = await running_row(started["session_id"])
    response = await viewer.post(SESSIONS, {"action": "cancel_running", "_selected_action": [str(row.pk)]})
    assert response.status_code == 200  # the changelist again, with "No action selected"
    frames = await client.recv_until(TERMINAL_TYPES)
    await client.close()
    assert frames[-1]["type"] == "stream.completed"


async def test_sign_out_everywhere_from_admin(user: Any, other_user: Any) -> None:
    """'Sign out everywhere' closes the user's sockets with 4401 (an operator did it); other users stay."""
    alice, bob = await opened(access_for(user)), await opened(access_for(other_user))
    await act(await operator(), USERS, "close_sockets", user.pk)
    close, _ = await until_closed(alice)
    assert close == close_of(AuthCause.CLOSED_BY_OPERATOR)
    assert AUTH_CLOSES[AuthCause.CLOSED_BY_OPERATOR][0] == 4401
    await bob.send({"type": "ping", "id": 1})
    assert (await bob.recv())["type"] == "pong"
    await bob.close()


async def test_deactivate_from_admin(user: Any) -> None:
    """'Deactivate' closes the user's sockets with 4403; the acting operator is never deactivated."""
    alice = await opened(access_for(user))
    root = await operator()
    root_pk = await get_user_model().objects.filter(username="root").values_list("pk", flat=True).aget()
    page = await act(root, USERS, "deactivate", user.pk, root_pk)
    close, _ = await until_closed(alice)
    assert close == close_of(AuthCause.DEACTIVATED)
    assert "Deactivated 1 user(s)" in page and "Your own account was left active." in page
    assert await get_user_model().objects.filter(username="root", is_active=True).aexists()


async def test_logins_are_listed_and_no_refresh_token_is_shown(user: Any) -> None:
    """Operators see each login and how it ended; SimpleJWT's pages, which show refresh tokens whole, are gone."""
    tokens = await database_sync_to_async(sign_in)()
    root = await operator()
    logins = (await root.get("/admin/accounts/login/")).content.decode()
    assert tokens.login_id[:8] in logins and "alice" in logins
    index = (await root.get("/admin/")).content.decode()
    assert "Outstanding tokens" not in index and "Blacklisted tokens" not in index
    assert (await root.get("/admin/token_blacklist/outstandingtoken/")).status_code == 404
    assert tokens.refresh not in logins
