"""Logins through the HTTP endpoints: rotation, logout of one login, logout everywhere, password and activity.

In-process (DRF's test client and the real ASGI application); tests/test_revocation_e2e.py shows the same
reaching sockets on other processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.credentials import LOGIN_ID_CLAIM
from accounts.models import Login
from streaming.protocol import AUTH_CLOSES, AuthCause
from tests.conftest import access_for, make_user
from tests.wsclient import AppClient


@dataclass
class Tokens:
    access: str
    refresh: str

    @property
    def login_id(self) -> str:
        return str(AccessToken(self.access)[LOGIN_ID_CLAIM])  # type: ignore[arg-type]


def sign_in(username: str = "alice") -> Tokens:
    response = APIClient().post("/api/auth/token/", {"username": username, "password": f"pw-{username}"})
    assert response.status_code == 200, response.content
    return Tokens(response.json()["access"], response.json()["refresh"])


def refresh(raw: str) -> Any:
    return APIClient().post("/api/auth/token/refresh/", {"refresh": raw}, format="json")


def post(path: str, access: str | None, body: dict[str, Any] | None = None) -> Any:
    client = APIClient()
    if access:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client.post(path, body or {}, format="json")


def scripts_status(access: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return int(client.get("/api/scripts/").status_code)


async def socket_opens(access: str) -> bool:
    """A new socket with this token: established (True) or closed at once with 4401 (False)."""
    client = AppClient(token=access)
    connected, _ = await client.comm.connect(timeout=5)
    assert connected
    first = await client.comm.receive_output(timeout=5)
    await client.comm.disconnect()
    if first["type"] == "websocket.close":
        assert first["code"] == 4401, first
        return False
    return True


# ---------------------------------------------------------------- one login across rotations


def test_sign_in_starts_a_login_carried_by_both_tokens(user: Any) -> None:
    """A sign-in is one login: its id is in the refresh and the access token, and recorded for the user."""
    tokens = sign_in()
    assert RefreshToken(tokens.refresh)[LOGIN_ID_CLAIM] == tokens.login_id  # type: ignore[arg-type]
    login = Login.objects.get(id=tokens.login_id)
    assert login.user == user and login.ended_at is None


def test_refresh_rotates_keeps_the_login_and_blacklists_the_old_one(user: Any) -> None:
    """Each refresh answers a new refresh token of the same login; the one used is refused from then on."""
    tokens = sign_in()
    raw = tokens.refresh
    for _ in range(3):
        response = refresh(raw)
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["refresh"] != raw
        assert AccessToken(body["access"])[LOGIN_ID_CLAIM] == tokens.login_id
        assert RefreshToken(body["refresh"])[LOGIN_ID_CLAIM] == tokens.login_id
        assert refresh(raw).status_code == 401
        raw = body["refresh"]


def test_sign_ins_are_separate_logins(user: Any) -> None:
    """Two sign-ins of one user are two logins."""
    assert sign_in().login_id != sign_in().login_id


# ---------------------------------------------------------------- logout


def test_logout_ends_that_login_only(user: Any) -> None:
    """logout: that login's refresh and access tokens are refused, the user's other login goes on."""
    phone, laptop = sign_in(), sign_in()
    assert post("/api/auth/logout/", phone.access, {"refresh": phone.refresh}).status_code == 204
    gone = refresh(phone.refresh)
    assert gone.status_code == 401
    assert scripts_status(phone.access) == 401
    assert refresh(laptop.refresh).status_code == 200
    assert scripts_status(laptop.access) == 200
    login = Login.objects.get(id=phone.login_id)
    assert login.ended_at is not None and login.ended_by == AuthCause.LOGGED_OUT


def test_refresh_of_an_ended_login_says_why(user: Any) -> None:
    """A rotated (not blacklisted) refresh token of a signed-out login is refused with the logout's words."""
    tokens = sign_in()
    rotated = refresh(tokens.refresh).json()
    assert post("/api/auth/logout/", rotated["access"], {"refresh": rotated["refresh"]}).status_code == 204
    assert refresh(rotated["refresh"]).status_code == 401  # blacklisted: refused by SimpleJWT first
    # A token of the login minted outside the endpoint (not blacklisted) is refused by the login's end.
    again = RefreshToken.for_user(user)
    again[LOGIN_ID_CLAIM] = tokens.login_id
    response = refresh(str(again))
    assert response.status_code == 401
    assert response.json() == {"detail": AUTH_CLOSES[AuthCause.LOGGED_OUT][1], "code": "logged_out"}


@pytest.mark.parametrize(
    ("body", "field_error"),
    [
        ({}, "This field is required."),
        ({"refresh": "garbage"}, "Token is invalid"),
        ({"refresh": "other-user"}, "This refresh token belongs to another user."),
    ],
)
def test_logout_refuses_a_bad_refresh_token(user: Any, body: dict[str, str], field_error: str) -> None:
    """logout with no, a broken, or another user's refresh token: 400 naming the field, nothing ended."""
    tokens = sign_in()
    if body.get("refresh") == "other-user":
        make_user("bob")
        body = {"refresh": sign_in("bob").refresh}
    response = post("/api/auth/logout/", tokens.access, body)
    assert response.status_code == 400
    assert field_error in response.json()["refresh"][0]
    assert refresh(tokens.refresh).status_code == 200


def test_logout_needs_the_access_token(user: Any) -> None:
    """Without an access token, logout is 401 and the refresh token still works."""
    tokens = sign_in()
    assert post("/api/auth/logout/", None, {"refresh": tokens.refresh}).status_code == 401
    assert refresh(tokens.refresh).status_code == 200


def test_logout_all_ends_every_login_and_token(user: Any, other_user: Any) -> None:
    """logout/all: every login of the user and tokens minted outside sign-in are refused; bob is untouched."""
    first, second = sign_in(), sign_in()
    minted = access_for(user)
    bob = sign_in("bob")
    assert post("/api/auth/logout/all/", first.access).status_code == 204
    for tokens in (first, second):
        assert refresh(tokens.refresh).status_code == 401
        assert scripts_status(tokens.access) == 401
    assert scripts_status(minted) == 401
    assert refresh(bob.refresh).status_code == 200
    assert Login.objects.filter(user=user, ended_at=None).count() == 0
    later = sign_in()
    assert refresh(later.refresh).status_code == 200, "a sign-in after logout/all is a new login"


# ---------------------------------------------------------------- password and activity


def test_password_change_refuses_every_token(user: Any) -> None:
    """A new password (any path): refresh says so, API and sockets refuse the old tokens; a new sign-in works."""
    tokens = sign_in()
    user.set_password("pw-new")
    user.save()
    response = refresh(tokens.refresh)
    assert response.status_code == 401 and response.json()["code"] == "password_changed"
    assert scripts_status(tokens.access) == 401
    fresh = APIClient().post("/api/auth/token/", {"username": "alice", "password": "pw-new"})
    assert fresh.status_code == 200


def test_deactivated_user_cannot_refresh(user: Any) -> None:
    """An ORM update (no signal) deactivating the user: the refresh is refused."""
    tokens = sign_in()
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    assert refresh(tokens.refresh).status_code == 401


async def test_revoked_tokens_open_no_socket(user: Any) -> None:
    """After logout, logout/all or a password change, the old access tokens get 4401 at the handshake."""
    one, two = await database_sync_to_async(sign_in)(), await database_sync_to_async(sign_in)()
    assert await socket_opens(one.access) and await socket_opens(two.access)
    await database_sync_to_async(post)("/api/auth/logout/", one.access, {"refresh": one.refresh})
    assert not await socket_opens(one.access)
    assert await socket_opens(two.access)
    await database_sync_to_async(post)("/api/auth/logout/all/", two.access)
    assert not await socket_opens(two.access)
    three = await database_sync_to_async(sign_in)()
    assert await socket_opens(three.access)
    await database_sync_to_async(make_user_change_password)(user)
    assert not await socket_opens(three.access)


def make_user_change_password(user: Any) -> None:
    user.set_password("pw-other")
    user.save()
