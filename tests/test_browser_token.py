"""The page with access tokens of 10 s in real Chromium: it renews them in-band, the socket never drops."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from accounts.models import Login
from streaming.models import Connection
from tests import test_browser
from tests.servers import DaphneServer
from tests.test_auth_cluster import http
from tests.test_browser import RECORD_STATES_JS, generate, saved_script, signed_in, words_on_page

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

# test_browser.py's fixtures: Chromium per test, a fresh context and page, alice who signs in.
browser = test_browser.browser
page = test_browser.page
creator = test_browser.creator

TOKEN_TTL_S = 10
# 300 words (120 s of script) at 100 ms a word: a stream of 30 s, three token lifetimes.
TOKEN_ENV = {"JWT_ACCESS_TTL_S": str(TOKEN_TTL_S), "MOCK_STREAM_DELAY_MS": "100"}
STREAM_WAIT_MS = 60_000
# Every access token the page holds, as it changes (the page keeps it in sessionStorage).
RECORD_TOKENS_JS = """() => {
  window.__tokens = new Set();
  const read = () => window.__tokens.add(JSON.parse(sessionStorage.getItem('creatornexus.auth')).access);
  read();
  window.__tokenTimer = setInterval(read, 100);
}"""


@pytest.fixture(scope="module")
def short_token_server(django_db_setup: Any) -> Iterator[DaphneServer]:
    with DaphneServer(env=TOKEN_ENV) as daphne:
        yield daphne


def test_thirty_second_stream_on_ten_second_tokens_without_a_reconnect(
    page: Any, short_token_server: DaphneServer, creator: Any
) -> None:
    """A 30 s stream with 10 s access tokens: renewed in-band, the badge never leaves 'connected', one socket
    from sign-in to the end, and the text equals the saved script."""
    server = short_token_server
    signed_in(page, server)
    page.evaluate(RECORD_STATES_JS)
    page.evaluate(RECORD_TOKENS_JS)
    began = time.monotonic()
    generate(page, "a month of content in one afternoon", duration=120)
    page.wait_for_selector("#output[data-status=completed]", timeout=STREAM_WAIT_MS)
    took = time.monotonic() - began
    assert took > 3 * TOKEN_TTL_S - 2, f"the stream took {took:.1f}s: it did not outlive the tokens"
    assert page.evaluate("() => window.__states") == ["connected"]
    assert page.evaluate("() => window.__tokens.size") >= 3
    saved = saved_script(page, server, creator)
    assert page.text_content("#script") == saved["script"]
    assert words_on_page(page) == saved["words"] == 300
    assert page.is_hidden("#output-alert") and page.is_hidden("#signin-view")
    server.settle()
    sockets = list(Connection.objects.filter(user=creator).values_list("closed_at", flat=True))
    assert sockets == [None], "one socket, still open: no reconnect"


def test_sign_out_ends_the_login_on_the_server(page: Any, short_token_server: DaphneServer, creator: Any) -> None:
    """'Sign out' on the page ends that login on the server: its refresh token is refused from then on."""
    signed_in(page, short_token_server)
    refresh = page.evaluate("() => JSON.parse(sessionStorage.getItem('creatornexus.auth')).refresh")
    page.click("#sign-out")
    page.wait_for_selector("#signin-view:visible")
    deadline = time.monotonic() + 5  # the logout request leaves as the page signs out: no event here to wait on
    while not Login.objects.filter(user=creator, ended_by="logged_out").exists():
        assert time.monotonic() < deadline, "the login was not ended on the server"
        time.sleep(0.05)
    status, _ = http(short_token_server, "/api/auth/token/refresh/", {"refresh": refresh})
    assert status == 401
