"""Authentication: token endpoints, the three token carriers, 4401 refusals, the Origin check, no tokens in logs."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import jwt
import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from creatornexus.asgi import application
from streaming.models import Connection
from streaming.protocol import CLOSE_REASONS, CloseCode
from tests.conftest import access_for, make_user
from tests.wsclient import AppClient

PATH = "/ws/stream/"


def open_socket(
    path: str = PATH, headers: list[tuple[bytes, bytes]] | None = None, subprotocols: list[str] | None = None
) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, path, headers=headers or [], subprotocols=subprotocols)


async def assert_closed_4401(comm: WebsocketCommunicator) -> None:
    """Accepted, then closed at once with 4401 and not one frame before the close."""
    connected, _ = await comm.connect(timeout=5)
    assert connected
    message = await comm.receive_output(timeout=5)
    assert message == {"type": "websocket.close", "code": 4401, "reason": CLOSE_REASONS[CloseCode.UNAUTHORIZED]}
    assert type(message["code"]) is int, "Daphne (autobahn) refuses an IntEnum close code"
    assert await comm.receive_nothing(timeout=0.05)
    await comm.disconnect()


def expired_access(user: Any) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=30))
    return str(token)


def foreign_signed_access(user: Any) -> str:
    payload = dict(AccessToken.for_user(user).payload)
    return jwt.encode(payload, "not-the-server-key-" * 3, algorithm="HS256")


# ---------------------------------------------------------------- token endpoints


def test_token_pair_for_valid_credentials(user: Any) -> None:
    """POST /api/auth/token/ with username and password returns an access and a refresh token."""
    response = APIClient().post("/api/auth/token/", {"username": "alice", "password": "pw-alice"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert AccessToken(body["access"])["user_id"] == str(user.pk)
    assert RefreshToken(body["refresh"])["user_id"] == str(user.pk)


def test_token_refused_for_wrong_password(user: Any) -> None:
    """Wrong credentials get 401 and no token."""
    response = APIClient().post("/api/auth/token/", {"username": "alice", "password": "nope"}, format="json")
    assert response.status_code == 401
    assert "access" not in response.json()


def test_refresh_returns_new_access(user: Any) -> None:
    """POST /api/auth/token/refresh/ with a refresh token returns a fresh access token."""
    refresh = str(RefreshToken.for_user(user))
    response = APIClient().post("/api/auth/token/refresh/", {"refresh": refresh}, format="json")
    assert response.status_code == 200
    assert AccessToken(response.json()["access"])["user_id"] == str(user.pk)


def test_refresh_refuses_access_token(token: str) -> None:
    """An access token is no refresh token: 401."""
    response = APIClient().post("/api/auth/token/refresh/", {"refresh": token}, format="json")
    assert response.status_code == 401


async def test_issued_token_opens_socket(user: Any) -> None:
    """The access token from the endpoint authenticates the socket as that user."""
    response = await database_sync_to_async(APIClient().post)(
        "/api/auth/token/", {"username": "alice", "password": "pw-alice"}, format="json"
    )
    client = AppClient(token=response.json()["access"])
    established = await client.open()
    await client.close()
    assert established["user"] == {"id": user.pk, "username": "alice"}


# ---------------------------------------------------------------- three ways in


async def test_query_token_authenticates(user: Any, token: str) -> None:
    """?token=<access> opens the socket for its user."""
    client = AppClient(token=token)
    established = await client.open()
    await client.close()
    assert established["user"]["username"] == "alice"


async def test_subprotocol_token_authenticates_and_answers_only_v1(user: Any, token: str) -> None:
    """Sec-WebSocket-Protocol bearer.<access> authenticates; the server answers creatornexus.v1, never the bearer."""
    client = AppClient(subprotocols=["creatornexus.v1", f"bearer.{token}"])
    established = await client.open()
    await client.close()
    assert established["user"]["username"] == "alice"
    assert client.accepted_subprotocol == "creatornexus.v1"


async def test_authorization_header_authenticates(user: Any, token: str) -> None:
    """Authorization: Bearer <access> opens the socket for its user."""
    client = AppClient(headers=[(b"authorization", f"Bearer {token}".encode())])
    established = await client.open()
    await client.close()
    assert established["user"]["username"] == "alice"


async def test_query_token_wins_over_header(user: Any, other_user: Any, token: str) -> None:
    """With a query token and a header token, the query token is the one used."""
    client = AppClient(token=token, headers=[(b"authorization", f"Bearer {access_for(other_user)}".encode())])
    established = await client.open()
    await client.close()
    assert established["user"]["username"] == "alice"


async def test_subprotocol_wins_over_header(user: Any, other_user: Any, token: str) -> None:
    """With a subprotocol token and a header token, the subprotocol token is the one used."""
    client = AppClient(
        subprotocols=["creatornexus.v1", f"bearer.{token}"],
        headers=[(b"authorization", f"Bearer {access_for(other_user)}".encode())],
    )
    established = await client.open()
    await client.close()
    assert established["user"]["username"] == "alice"


async def test_bad_first_match_is_not_rescued(user: Any, token: str) -> None:
    """First match wins even when it is bad: a broken query token with a good header is 4401."""
    headers = [(b"authorization", f"Bearer {token}".encode())]
    await assert_closed_4401(open_socket(f"{PATH}?token=broken", headers=headers))


# ---------------------------------------------------------------- 4401


async def test_missing_token_4401(user: Any) -> None:
    """No token at all: accepted, then closed with 4401 and no frame."""
    await assert_closed_4401(open_socket())


@pytest.mark.parametrize("raw", ["garbage", "a.b.c", "Bearer", "%20"])
async def test_malformed_token_4401(user: Any, raw: str) -> None:
    """A token that is not a JWT: 4401."""
    await assert_closed_4401(open_socket(f"{PATH}?token={raw}"))


async def test_badly_signed_token_4401(user: Any) -> None:
    """A token signed with another key: 4401."""
    await assert_closed_4401(open_socket(f"{PATH}?token={foreign_signed_access(user)}"))


async def test_expired_token_4401(user: Any) -> None:
    """An expired access token: 4401."""
    await assert_closed_4401(open_socket(f"{PATH}?token={expired_access(user)}"))


async def test_refresh_token_instead_of_access_4401(user: Any) -> None:
    """A refresh token where an access token belongs: 4401."""
    await assert_closed_4401(open_socket(f"{PATH}?token={RefreshToken.for_user(user)}"))


async def test_inactive_user_4401(transactional_db: Any) -> None:
    """A valid token of a deactivated user: 4401."""
    inactive = await database_sync_to_async(make_user)("carol", active=False)
    await assert_closed_4401(open_socket(f"{PATH}?token={access_for(inactive)}"))


async def test_deleted_user_4401(user: Any, token: str) -> None:
    """A valid token of a user that no longer exists: 4401."""
    await database_sync_to_async(user.delete)()
    await assert_closed_4401(open_socket(f"{PATH}?token={token}"))


async def test_bad_subprotocol_token_4401(user: Any) -> None:
    """A bad bearer subprotocol: 4401, the handshake still answering creatornexus.v1 only."""
    comm = open_socket(subprotocols=["creatornexus.v1", f"bearer.{expired_access(user)}"])
    connected, subprotocol = await comm.connect(timeout=5)
    assert connected and subprotocol == "creatornexus.v1"
    assert await comm.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": 4401,
        "reason": CLOSE_REASONS[CloseCode.UNAUTHORIZED],
    }


async def test_bad_header_token_4401(user: Any) -> None:
    """A bad Authorization header: 4401."""
    await assert_closed_4401(
        open_socket(headers=[(b"authorization", f"Bearer {foreign_signed_access(user)}".encode())])
    )


async def test_refused_socket_records_no_connection(user: Any) -> None:
    """A 4401 socket leaves no connection row behind."""
    await assert_closed_4401(open_socket())
    assert await database_sync_to_async(Connection.objects.count)() == 0


# ---------------------------------------------------------------- Origin


@pytest.mark.parametrize("origin", ["https://evil.example", "http://localhost.evil.example", "null"])
async def test_foreign_browser_origin_refused(user: Any, token: str, origin: str) -> None:
    """A browser Origin that ALLOWED_HOSTS does not allow is refused before the handshake."""
    comm = open_socket(f"{PATH}?token={token}", headers=[(b"origin", origin.encode())])
    connected, _ = await comm.connect(timeout=5)
    assert not connected


@pytest.mark.parametrize("origin", ["http://localhost:8000", "https://127.0.0.1", "http://[::1]:8000"])
async def test_allowed_origin_connects(user: Any, token: str, origin: str) -> None:
    """A browser from an allowed host opens the socket."""
    client = AppClient(token=token, headers=[(b"origin", origin.encode())])
    established = await client.open()
    await client.close()
    assert established["type"] == "connection.established"


async def test_no_origin_connects(user: Any, token: str) -> None:
    """A non-browser client that sends no Origin opens the socket."""
    client = AppClient(token=token)
    assert (await client.open())["user"]["username"] == "alice"
    await client.close()


async def test_explicit_allowed_origins_override_hosts(user: Any, token: str, settings: Any) -> None:
    """WS_ALLOWED_ORIGINS, when set, replaces ALLOWED_HOSTS for the Origin check."""
    settings.WS_ALLOWED_ORIGINS = ["https://app.creatornexus.example"]
    good = AppClient(token=token, headers=[(b"origin", b"https://app.creatornexus.example")])
    await good.open()
    await good.close()
    bad = open_socket(f"{PATH}?token={token}", headers=[(b"origin", b"http://localhost:8000")])
    assert not (await bad.connect(timeout=5))[0]


# ---------------------------------------------------------------- logs


async def test_tokens_never_logged(user: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Neither good nor bad tokens, by any carrier or endpoint, appear in any log record."""
    caplog.set_level(logging.DEBUG)
    good, expired, forged = access_for(user), expired_access(user), foreign_signed_access(user)
    refresh = str(RefreshToken.for_user(user))
    for client in (
        AppClient(token=good),
        AppClient(subprotocols=["creatornexus.v1", f"bearer.{good}"]),
        AppClient(headers=[(b"authorization", f"Bearer {good}".encode())]),
    ):
        await client.open()
        await client.close()
    for path in (f"{PATH}?token={expired}", f"{PATH}?token={forged}", f"{PATH}?token={refresh}"):
        await assert_closed_4401(open_socket(path))
    api = APIClient()
    obtained = await database_sync_to_async(api.post)(
        "/api/auth/token/", {"username": "alice", "password": "pw-alice"}, format="json"
    )
    await database_sync_to_async(api.post)("/api/auth/token/refresh/", {"refresh": good}, format="json")
    logged = caplog.text + "".join(str(record.args) for record in caplog.records)
    secrets = [good, expired, forged, refresh, *obtained.json().values(), "pw-alice"]
    assert caplog.records, "expected some log records to inspect"
    for secret in secrets:
        assert secret not in logged
        assert secret.split(".")[-1] not in logged
    assert django_settings.SIMPLE_JWT["SIGNING_KEY"] not in logged
