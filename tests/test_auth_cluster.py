"""A socket's trust over its whole life, on two real Daphne processes sharing Redis and the database.

Tokens come from the servers' own endpoints (sign-in, rotating refresh, logout); sockets are real; revocation
is done the way it happens in production: an ORM update in another process, the HTTP endpoints, the admin.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookiejar import CookieJar
from typing import Any

import pytest
import websockets
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import AccessToken

from streaming.models import StreamSession
from streaming.protocol import AUTH_CLOSES, TERMINAL_TYPES, AuthCause
from tests import test_cluster
from tests.conftest import wait_for
from tests.servers import DaphneServer
from tests.wsclient import SocketClient, open_socket

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

# tests/test_cluster.py's fixtures: Daphne processes on the flushed test Redis and the test database, two at once.
start_server = test_cluster.start_server
cluster = test_cluster.cluster

# Every close this file waits for is promised within 5 s of its cause.
WITHIN_S = 5.0
# Access tokens of a few seconds, signed by the servers themselves (JWT_ACCESS_TTL_S).
SHORT_TOKENS = {"JWT_ACCESS_TTL_S": "3"}
# The in-band refresh happens this long before the token expires, as the browser client does.
REFRESH_BEFORE_S = 1.0


# ---------------------------------------------------------------- HTTP as a client does it


@dataclass
class Login:
    access: str
    refresh: str


def http(server: DaphneServer, path: str, body: dict[str, Any] | None = None, access: str = "") -> tuple[int, Any]:
    request = urllib.request.Request(f"{server.http_url}{path}", data=json.dumps(body or {}).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    if access:
        request.add_header("Authorization", f"Bearer {access}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


async def sign_in(server: DaphneServer, username: str = "alice") -> Login:
    status, body = await asyncio.to_thread(
        http, server, "/api/auth/token/", {"username": username, "password": f"pw-{username}"}
    )
    assert status == 200, body
    return Login(body["access"], body["refresh"])


async def refreshed(server: DaphneServer, login: Login) -> Login:
    status, body = await asyncio.to_thread(http, server, "/api/auth/token/refresh/", {"refresh": login.refresh})
    assert status == 200, body
    return Login(body["access"], body["refresh"])


def exp_of(token: str) -> int:
    return int(AccessToken(token, verify=False)["exp"])  # type: ignore[arg-type]


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- sockets


@asynccontextmanager
async def socket(server: DaphneServer, token: str) -> AsyncIterator[SocketClient]:
    """A socket authenticated by the subprotocol, as the browser does it."""
    async with open_socket(server.ws_url, subprotocols=["creatornexus.v1", f"bearer.{token}"]) as client:
        yield client


@dataclass
class Closed:
    code: int
    reason: str
    at: float  # wall clock, to compare with a token's exp
    frames: list[dict[str, Any]]


async def closed(client: SocketClient, timeout: float = WITHIN_S + 5) -> Closed:
    """Read until the server closes the socket: its code, reason, when, and the frames before it."""
    frames: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                frames.append(await client.recv(timeout))
    except websockets.ConnectionClosed as exc:
        assert exc.rcvd is not None, "closed without a close frame"
        return Closed(exc.rcvd.code, exc.rcvd.reason, time.time(), frames)


def says(cause: AuthCause) -> tuple[int, str]:
    code, reason = AUTH_CLOSES[cause]
    return int(code), reason


async def still_open(client: SocketClient) -> bool:
    """The socket answers a ping (it was not closed)."""
    await client.send({"type": "ping", "id": "still-open"})
    return (await client.recv_until({"pong"}))[-1]["id"] == "still-open"


def chunk_seqs(frames: list[dict[str, Any]]) -> list[int]:
    return [frame["seq"] for frame in frames if frame["type"] == "stream.chunk"]


# ---------------------------------------------------------------- token lifetime


@pytest.mark.parametrize("cluster", [{**SHORT_TOKENS, "MOCK_STREAM_DELAY_MS": "30"}], indirect=True)
async def test_unrefreshed_socket_closes_at_expiry_and_its_stream_goes_on(cluster: Any, user: Any) -> None:
    """No refresh: 4401 'expired' within 5 s of exp; the stream goes on; refreshed, the client resumes elsewhere."""
    one, two = cluster
    login = await sign_in(one)
    async with socket(two, login.access) as client:
        assert client.established["token_expires_at"] == iso(exp_of(login.access))
        started = await client.generate(duration=60)  # 150 words at 30 ms: outlives the token
        end = await closed(client)
    assert (end.code, end.reason) == says(AuthCause.TOKEN_EXPIRED)
    assert exp_of(login.access) <= end.at < exp_of(login.access) + WITHIN_S
    seen = chunk_seqs(end.frames)
    assert 0 < seen[-1] < started["estimated_words"], "the stream should still run when the socket closes"
    login = await refreshed(one, login)
    async with socket(one, login.access) as again:
        await again.resume(started["session_id"], last_seq=seen[-1])
        rest = await again.recv_until(TERMINAL_TYPES)
    assert rest[-1]["type"] == "stream.completed"
    assert seen + chunk_seqs(rest) == list(range(1, started["estimated_words"] + 1))


@pytest.mark.parametrize("cluster", [{**SHORT_TOKENS, "MOCK_STREAM_DELAY_MS": "40"}], indirect=True)
async def test_refreshed_in_band_the_socket_stays_and_the_stream_is_gapless(cluster: Any, user: Any) -> None:
    """Refresh before each expiry and send `auth`: auth.ok each time, no close, every seq once across them."""
    one, two = cluster
    login = await sign_in(one)
    loop = asyncio.get_running_loop()
    frames: list[dict[str, Any]] = []
    renewed: list[str] = []
    async with socket(two, login.access) as client:
        started = await client.generate(duration=120)  # 300 words at 40 ms: four lifetimes of a 3 s token
        while not frames or frames[-1]["type"] not in TERMINAL_TYPES:
            refresh_at = loop.time() + exp_of(login.access) - REFRESH_BEFORE_S - time.time()
            try:  # read the stream until it ends or it is time to refresh (the client's own timer)
                async with asyncio.timeout_at(refresh_at):
                    while not frames or frames[-1]["type"] not in TERMINAL_TYPES:
                        frames.append(await client.recv(timeout=30))
            except TimeoutError:
                login = await refreshed(one, login)
                renewed.append(iso(exp_of(login.access)))
                await client.send({"type": "auth", "token": login.access})
        assert await still_open(client)
    oks = [frame["token_expires_at"] for frame in frames if frame["type"] == "auth.ok"]
    assert len(renewed) >= 3
    assert oks == renewed
    first_ok = next(i for i, frame in enumerate(frames) if frame["type"] == "auth.ok")
    third_ok = [i for i, frame in enumerate(frames) if frame["type"] == "auth.ok"][2]
    assert chunk_seqs(frames[:first_ok]) and chunk_seqs(frames[third_ok:]), "the stream spans the refreshes"
    assert frames[-1]["type"] == "stream.completed"
    assert chunk_seqs(frames) == list(range(1, started["estimated_words"] + 1))


async def test_auth_with_another_users_token_closes(cluster: Any, user: Any, other_user: Any) -> None:
    """`auth` carrying bob's valid token on alice's socket: 4401 saying the token is another user's."""
    one, two = cluster
    alice, bob = await sign_in(one), await sign_in(two, "bob")
    async with socket(two, alice.access) as client:
        await client.send({"type": "auth", "token": bob.access})
        end = await closed(client)
    assert (end.code, end.reason) == says(AuthCause.OTHER_USER)
    assert [frame for frame in end.frames if frame["type"] != "ping"] == []


# ---------------------------------------------------------------- revocation on every process


async def test_deactivation_by_orm_closes_sockets_on_every_process_with_4403(
    cluster: Any, user: Any, other_user: Any
) -> None:
    """is_active=False by a bare ORM update (no signal) in another process: alice's sockets on both processes
    close with 4403 within 5 s; bob's socket stays."""
    one, two = cluster
    alice, bob = await sign_in(one), await sign_in(one, "bob")
    async with socket(one, alice.access) as on_one, socket(two, alice.access) as on_two, socket(two, bob.access) as b:
        await database_sync_to_async(get_user_model().objects.filter(pk=user.pk).update)(is_active=False)
        asked = time.time()
        ends = await asyncio.gather(closed(on_one), closed(on_two))
        assert await still_open(b)
    for end in ends:
        assert (end.code, end.reason) == says(AuthCause.DEACTIVATED)
        assert end.at - asked < WITHIN_S


async def test_password_change_closes_with_4401(cluster: Any, user: Any) -> None:
    """A new password saved in another process: the socket closes with 4401 'password changed' within 5 s, and
    the old refresh token is refused."""
    one, two = cluster
    login = await sign_in(one)
    async with socket(two, login.access) as client:

        def change() -> None:
            user.set_password("pw-new")
            user.save()

        await database_sync_to_async(change)()
        asked = time.time()
        end = await closed(client)
    assert (end.code, end.reason) == says(AuthCause.PASSWORD_CHANGED)
    assert end.at - asked < WITHIN_S
    status, body = await asyncio.to_thread(http, one, "/api/auth/token/refresh/", {"refresh": login.refresh})
    assert (status, body["code"]) == (401, "password_changed")


async def test_logout_closes_that_logins_sockets_only(cluster: Any, user: Any) -> None:
    """logout of the phone's login on one process: its sockets on both processes close with 4401 within 5 s;
    the laptop's login (same user) keeps its socket and refreshes; the phone's tokens are refused."""
    one, two = cluster
    phone, laptop = await sign_in(one), await sign_in(two)
    async with (
        socket(one, phone.access) as phone_one,
        socket(two, phone.access) as phone_two,
        socket(two, laptop.access) as laptop_two,
    ):
        status, _ = await asyncio.to_thread(http, one, "/api/auth/logout/", {"refresh": phone.refresh}, phone.access)
        assert status == 204
        asked = time.time()
        ends = await asyncio.gather(closed(phone_one), closed(phone_two))
        # Process two has checked its sockets since the logout (it closed phone_two): the laptop's still answers.
        assert await still_open(laptop_two)
    for end in ends:
        assert (end.code, end.reason) == says(AuthCause.LOGGED_OUT)
        assert end.at - asked < WITHIN_S
    status, _ = await asyncio.to_thread(http, two, "/api/auth/token/refresh/", {"refresh": phone.refresh})
    assert status == 401
    await refreshed(two, laptop)
    with pytest.raises(websockets.ConnectionClosed) as refused:
        async with socket(two, phone.access):
            pass
    assert refused.value.rcvd is not None and refused.value.rcvd.code == 4401


async def test_logout_all_closes_every_login(cluster: Any, user: Any) -> None:
    """logout/all: the sockets of every login of the user, on both processes, close with 4401 within 5 s."""
    one, two = cluster
    phone, laptop = await sign_in(one), await sign_in(two)
    async with socket(one, phone.access) as phone_one, socket(two, laptop.access) as laptop_two:
        status, _ = await asyncio.to_thread(http, two, "/api/auth/logout/all/", {}, laptop.access)
        assert status == 204
        asked = time.time()
        ends = await asyncio.gather(closed(phone_one), closed(laptop_two))
    for end in ends:
        assert (end.code, end.reason) == says(AuthCause.SIGNED_OUT_EVERYWHERE)
        assert end.at - asked < WITHIN_S


# ---------------------------------------------------------------- operators, from the admin of one process


class AdminSession:
    """An operator signed in to one process's admin (session cookie, CSRF token), as a browser would be."""

    def __init__(self, server: DaphneServer) -> None:
        self.server = server
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def _page(self, path: str, form: dict[str, Any] | None = None) -> str:
        data = urllib.parse.urlencode(form, doseq=True).encode() if form is not None else None
        with self.opener.open(f"{self.server.http_url}{path}", data=data, timeout=10) as response:
            return str(response.read().decode())

    def _csrf(self, html: str) -> str:
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        assert found, "no CSRF token on the page"
        return found.group(1)

    def sign_in(self, username: str, password: str) -> None:
        form = self._page("/admin/login/")
        landed = self._page(
            "/admin/login/?next=/admin/",
            {"csrfmiddlewaretoken": self._csrf(form), "username": username, "password": password, "next": "/admin/"},
        )
        assert "Log out" in landed, "admin sign-in failed"

    def act(self, changelist: str, action: str, *pks: Any) -> str:
        """Select rows, run an action; the page it lands on."""
        listing = self._page(changelist)
        form = {"csrfmiddlewaretoken": self._csrf(listing), "action": action, "_selected_action": [str(p) for p in pks]}
        return self._page(changelist, form)


@pytest.fixture
async def operator(transactional_db: Any) -> None:
    await database_sync_to_async(get_user_model().objects.create_superuser)("root", "root@example.com", "pw-root")


ADMIN_ENV = {"DJANGO_SECURE_COOKIES": "0", "MOCK_STREAM_DELAY_MS": "20"}  # the admin's cookies over plain HTTP


@pytest.mark.parametrize("cluster", [ADMIN_ENV], indirect=True)
async def test_admin_on_one_process_cancels_a_stream_running_on_the_other(
    cluster: Any, user: Any, operator: None
) -> None:
    """'Cancel selected running sessions' in process one's admin stops a stream process two runs: the producer's
    socket gets stream.cancelled within a couple of seconds, and the row says cancelled."""
    one, two = cluster
    login = await sign_in(two)
    async with socket(two, login.access) as producer:
        started = await producer.generate(duration=120)
        await producer.chunks_up_to(3)
        await wait_for(lambda: StreamSession.objects.filter(session_id=started["session_id"]).exists())
        pk = await StreamSession.objects.values_list("pk", flat=True).aget(session_id=started["session_id"])
        admin = AdminSession(one)
        await asyncio.to_thread(admin.sign_in, "root", "pw-root")
        page = await asyncio.to_thread(admin.act, "/admin/streaming/streamsession/", "cancel_running", pk)
        frames = await producer.recv_until(TERMINAL_TYPES, timeout=3)
    assert "Asked 1 running session(s) to stop" in page
    assert frames[-1]["type"] == "stream.cancelled"
    assert frames[-1]["seq"] < started["estimated_words"]
    await wait_for(lambda: StreamSession.objects.get(session_id=started["session_id"]).status == "cancelled")


@pytest.mark.parametrize("cluster", [ADMIN_ENV], indirect=True)
async def test_admin_actions_on_one_process_close_sockets_on_the_other(
    cluster: Any, user: Any, other_user: Any, operator: None
) -> None:
    """Process one's admin: 'sign out everywhere' closes alice's socket on process two with 4401 (an operator
    did it); 'deactivate' closes bob's there with 4403; each within 5 s."""
    one, two = cluster
    alice, bob = await sign_in(two), await sign_in(two, "bob")
    admin = AdminSession(one)
    await asyncio.to_thread(admin.sign_in, "root", "pw-root")
    async with socket(two, alice.access) as alice_two, socket(two, bob.access) as bob_two:
        await asyncio.to_thread(admin.act, "/admin/auth/user/", "close_sockets", user.pk)
        asked = time.time()
        signed_out = await closed(alice_two)
        assert await still_open(bob_two)
        await asyncio.to_thread(admin.act, "/admin/auth/user/", "deactivate", other_user.pk)
        deactivated_at = time.time()
        deactivated = await closed(bob_two)
    assert (signed_out.code, signed_out.reason) == says(AuthCause.CLOSED_BY_OPERATOR)
    assert signed_out.at - asked < WITHIN_S
    assert (deactivated.code, deactivated.reason) == says(AuthCause.DEACTIVATED)
    assert deactivated.at - deactivated_at < WITHIN_S
    status, _ = await asyncio.to_thread(http, one, "/api/auth/token/refresh/", {"refresh": alice.refresh})
    assert status == 401
