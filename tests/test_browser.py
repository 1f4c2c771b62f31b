"""The creator's page in a real browser (Debian's Chromium via Playwright) against a real Daphne process."""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import access_for, make_user
from tests.servers import ROOT, DaphneServer

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts"
# Slow enough that a stream lasts a few seconds (there is time to drop, reload, cancel), fast enough for CI.
STREAM_ENV = {"MOCK_STREAM_DELAY_MS": "20"}
WAIT_MS = 20_000

WORD_COUNT_JS = "() => document.querySelector('#script').textContent.trim().split(/\\s+/).filter(Boolean).length"
VIEW_JS = "() => JSON.parse(sessionStorage.getItem('creatornexus.view'))"
# Records every connection state the badge shows, so a test can tell a reconnect happened however brief.
RECORD_STATES_JS = """() => {
  const badge = document.querySelector('#connection');
  window.__states = [badge.dataset.state];
  new MutationObserver(() => window.__states.push(badge.dataset.state)).observe(badge, {attributes: true});
}"""


def _chromium_or_skip() -> str:
    if shutil.which(CHROMIUM) or Path(CHROMIUM).exists():
        return CHROMIUM
    reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the browser tests", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def browser() -> Iterator[Any]:
    """Per test: the sync API keeps its own loop running, which must not overlap the async autouse fixtures."""
    executable = _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(django_db_setup: Any) -> Iterator[DaphneServer]:
    with DaphneServer(env=STREAM_ENV) as daphne:
        yield daphne


@pytest.fixture
def creator(transactional_db: Any) -> Any:
    """alice, who signs in through the page."""
    return make_user("alice")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh context per test: its own sessionStorage; page errors fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, errors


def sign_in(page: Any, server: DaphneServer, password: str = "pw-alice") -> None:
    page.goto(f"{server.http_url}/")
    page.fill("#username", "alice")
    page.fill("#password", password)
    page.click("#signin-submit")


def signed_in(page: Any, server: DaphneServer) -> None:
    sign_in(page, server)
    page.wait_for_selector("#connection[data-state=connected]")


def generate(page: Any, topic: str, duration: int = 60, platform: str = "tiktok") -> None:
    page.fill("#topic", topic)
    page.select_option("#platform", platform)
    page.fill("#duration", str(duration))
    page.click("#generate")
    page.wait_for_selector("#output[data-status=running]")


def words_on_page(page: Any) -> int:
    count: int = page.evaluate(WORD_COUNT_JS)
    return count


def wait_for_words(page: Any, at_least: int) -> None:
    page.wait_for_function(f"() => ({WORD_COUNT_JS})() >= {at_least}")


def saved_script(page: Any, server: DaphneServer, creator: Any) -> dict[str, Any]:
    """The script the server saved for the stream on screen (GET /api/scripts/<id>/)."""
    view = page.evaluate(VIEW_JS)
    status, body = server.get(f"/api/scripts/{view['script_id']}/", token=access_for(creator))
    assert status == 200, body
    return dict(body)


def drop_sockets(server: DaphneServer) -> int:
    request = urllib.request.Request(f"{server.http_url}/test/drop-sockets", method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        closed: int = json.loads(response.read())["closed"]
        return closed


def test_stream_grows_and_matches_saved_script(page: Any, server: DaphneServer, creator: Any) -> None:
    """sign in, generate: the text grows word by word, ends equal to the saved script, progress 100%."""
    signed_in(page, server)
    generate(page, "how to brew pour-over coffee", duration=60)
    wait_for_words(page, 5)
    early = words_on_page(page)
    assert page.get_attribute("#output", "data-status") == "running"
    page.wait_for_function(f"() => ({WORD_COUNT_JS})() >= {early + 20}")
    page.wait_for_selector("#output[data-status=completed]")
    saved = saved_script(page, server, creator)
    assert saved["status"] == "completed"
    assert page.text_content("#script") == saved["script"]
    assert words_on_page(page) == saved["words"]
    assert page.get_attribute("#progress", "aria-valuenow") == "100"
    assert not page.is_disabled("#copy") and not page.is_disabled("#download")
    page.wait_for_selector(f"#saved-list [data-script-id='{saved['id']}']")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-finished.png"), full_page=True)


def test_cancel_stops_the_stream(page: Any, server: DaphneServer, creator: Any) -> None:
    """Cancel mid-stream: the page says cancelled and keeps exactly the words the server saved."""
    signed_in(page, server)
    generate(page, "morning routines for creators", duration=120)
    wait_for_words(page, 10)
    page.click("#cancel")
    page.wait_for_selector("#output[data-status=cancelled]")
    view = page.evaluate(VIEW_JS)
    status, body = server.get("/api/scripts/?status=cancelled", token=access_for(creator))
    assert status == 200 and body["results"][0]["session_id"] == view["session_id"]
    assert body["results"][0]["words"] == words_on_page(page) < 240
    assert page.is_visible("#output-alert")
    assert page.is_hidden("#cancel")


def test_server_drop_mid_stream_resumes_without_gap(page: Any, server: DaphneServer, creator: Any) -> None:
    """Every socket closed by the server mid-stream: the client reconnects, resumes, text equals the saved script."""
    signed_in(page, server)
    page.evaluate(RECORD_STATES_JS)
    generate(page, "editing faster in three steps", duration=120)
    wait_for_words(page, 20)
    assert drop_sockets(server) >= 1
    page.wait_for_selector("#output[data-status=completed]")
    assert "reconnecting" in page.evaluate("() => window.__states")
    saved = saved_script(page, server, creator)
    assert page.text_content("#script") == saved["script"]
    assert words_on_page(page) == saved["words"] == 300
    assert page.is_hidden("#output-alert")


def test_reload_mid_stream_resumes(page: Any, server: DaphneServer, creator: Any) -> None:
    """A page reload mid-stream: the page shows what it had, resumes from its last seq and completes intact."""
    signed_in(page, server)
    generate(page, "lighting on a budget", duration=120)
    wait_for_words(page, 20)
    page.reload()
    page.wait_for_selector("#output[data-status=running]")
    assert words_on_page(page) >= 20
    page.wait_for_selector("#output[data-status=completed]")
    saved = saved_script(page, server, creator)
    assert page.text_content("#script") == saved["script"]
    assert page.get_attribute("#progress", "aria-valuenow") == "100"


def test_bad_password_shows_an_error(page: Any, server: DaphneServer, creator: Any) -> None:
    """A wrong password: a readable error, still signed out, nothing stored."""
    sign_in(page, server, password="not-the-password")
    page.wait_for_selector("#signin-error:visible")
    assert "don't match" in page.text_content("#signin-error")
    assert page.get_attribute("#connection", "data-state") == "signed-out"
    assert page.evaluate("() => sessionStorage.getItem('creatornexus.auth')") is None


def test_refused_access_token_is_refreshed(page: Any, server: DaphneServer, creator: Any) -> None:
    """A stored access token the server refuses (4401): the page refreshes it and connects, no sign-in."""
    signed_in(page, server)
    page.evaluate(
        """() => {
          const auth = JSON.parse(sessionStorage.getItem('creatornexus.auth'));
          sessionStorage.setItem('creatornexus.auth', JSON.stringify({...auth, access: 'not.a.token'}));
        }"""
    )
    page.reload()
    page.wait_for_selector("#connection[data-state=connected]")
    assert page.evaluate("() => JSON.parse(sessionStorage.getItem('creatornexus.auth')).access") != "not.a.token"
    generate(page, "a refused token", duration=20)
    page.wait_for_selector("#output[data-status=completed]")
    assert page.text_content("#script") == saved_script(page, server, creator)["script"]


@pytest.fixture(scope="module")
def short_token_server(django_db_setup: Any) -> Iterator[DaphneServer]:
    with DaphneServer(env={**STREAM_ENV, "JWT_ACCESS_TTL_S": "2"}) as daphne:
        yield daphne


def test_expired_access_token_is_refreshed_unnoticed(page: Any, short_token_server: DaphneServer, creator: Any) -> None:
    """Access tokens living 2 s: the page renews them, reconnects after a drop and streams; never signed out."""
    server = short_token_server
    signed_in(page, server)
    page.evaluate(RECORD_STATES_JS)
    first = page.evaluate("() => JSON.parse(sessionStorage.getItem('creatornexus.auth')).access")
    expires = page.evaluate("(t) => JSON.parse(atob(t.split('.')[1].replace(/-/g,'+').replace(/_/g,'/'))).exp", first)
    # Wait (on the page's own clock) until the first token is dead, so every later handshake needs a renewed one.
    page.wait_for_function(f"() => Date.now() / 1000 > {expires} + 0.5")
    assert page.evaluate("() => JSON.parse(sessionStorage.getItem('creatornexus.auth')).access") != first
    assert drop_sockets(server) >= 1
    page.wait_for_function("() => window.__states.includes('reconnecting')")
    page.wait_for_selector("#connection[data-state=connected]")
    generate(page, "tokens that expire", duration=30)
    page.wait_for_selector("#output[data-status=completed]")
    assert page.text_content("#script") == saved_script(page, server, creator)["script"]
    assert "signed-out" not in page.evaluate("() => window.__states")
    assert page.is_hidden("#signin-view") and page.is_hidden("#output-alert")


# A fake WebSocket that records what the client sends and lets the test push frames into it.
CLIENT_MULTI_WORD_JS = """async () => {
  const { StreamClient } = await import('/static/streaming/client.js');
  const sent = [];
  class FakeSocket {
    static OPEN = 1;
    constructor() { this.readyState = 1; window.__socket = this; }
    send(text) { sent.push(JSON.parse(text)); }
    close() {}
  }
  globalThis.WebSocket = FakeSocket;
  const client = new StreamClient({ url: 'ws://x/ws/stream/', getToken: async () => 't', storage: null });
  const chunks = [];
  client.addEventListener('chunk', (e) => chunks.push(e.detail));
  client.connect();
  await new Promise((resolve) => setTimeout(resolve, 0));
  const push = (frame) => window.__socket.onmessage({ data: JSON.stringify(frame) });
  push({ type: 'connection.established' });
  const started = client.generate({ topic: 'coffee', platform: 'tiktok', duration: 30 });
  const sid = '5f0e0000-0000-4000-8000-000000000001';
  push({ type: 'stream.started', request_id: sent[0].request_id, session_id: sid, estimated_words: 75 });
  await started;
  push({ type: 'stream.chunk', session_id: sid, seq: 3, count: 3, text: 'Hook: Stop guessing\\n\\n', words: 3 });
  push({ type: 'stream.chunk', session_id: sid, seq: 5, count: 3, text: 'guessing\\n\\nyour coffee. ', words: 5 });
  push({ type: 'stream.chunk', session_id: sid, seq: 5, count: 1, text: 'coffee. ', words: 5 });
  client.resume(sid, 5);
  return { sent, chunks: chunks.map(({ seq, count, text }) => ({ seq, count, text })) };
}"""


def test_client_asks_for_multi_word_chunks_and_never_repeats_a_word(page: Any, server: DaphneServer) -> None:
    """client.js sends "batch": true in generate and resume; a chunk whose first words it already has (from
    another connection) is cut to the new ones; a chunk it has whole is dropped."""
    page.goto(f"{server.http_url}/")
    result = page.evaluate(CLIENT_MULTI_WORD_JS)
    generate_frame, resume_frame = result["sent"][0], result["sent"][-1]
    assert generate_frame["type"] == "generate" and generate_frame["batch"] is True
    assert resume_frame["type"] == "resume" and resume_frame["batch"] is True and resume_frame["last_seq"] == 5
    assert result["chunks"] == [
        {"seq": 3, "count": 3, "text": "Hook: Stop guessing\n\n"},
        {"seq": 5, "count": 2, "text": "your coffee. "},
    ]
