"""client.js in headless Chromium, its WebSocket replaced by a stand-in: how each close code is answered."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from tests.servers import ROOT
from tests.test_browser import CHROMIUM_ARGS, _chromium_or_skip

pytestmark = pytest.mark.browser

CLIENT_JS = ROOT / "streaming" / "static" / "streaming" / "client.js"

# Loads the real client.js, connects through a fake WebSocket, follows a stream to seq 7, then the server closes
# the socket with `code`. Returns the sockets opened within `waitMs` of the close, what the newest one sent
# once established, and the state events.
SCENARIO_JS = """async ({source, code, waitMs}) => {
  const sockets = [];
  class FakeSocket {
    static OPEN = 1;
    constructor(url, protocols) { this.readyState = 1; this.sent = []; sockets.push(this); }
    send(data) { this.sent.push(JSON.parse(data)); }
    close() {}
    frame(obj) { this.onmessage({data: JSON.stringify(obj)}); }
  }
  globalThis.WebSocket = FakeSocket;
  const {StreamClient} = await import(`data:text/javascript;base64,${source}`);
  const client = new StreamClient({url: "ws://app.test/ws/stream/", getToken: async () => "token", storage: null});
  const states = [];
  client.addEventListener("state", (event) => states.push(event.detail));
  const settle = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  client.connect();
  await settle(0);
  const first = sockets[0];
  first.frame({type: "connection.established"});
  first.frame({type: "stream.started", session_id: "s1", request_id: "r1"});
  first.frame({type: "stream.chunk", session_id: "s1", seq: 7, text: "word "});
  first.onclose({code});
  await settle(waitMs);
  const newest = sockets[sockets.length - 1];
  if (newest !== first) newest.frame({type: "connection.established"});
  return {opened: sockets.length, resumed: newest === first ? [] : newest.sent, states};
}"""


@pytest.fixture
def chromium_page() -> Iterator[Any]:
    """Per test, as in test_browser.py: the sync API's loop must not overlap the async autouse fixtures."""
    executable = _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto("about:blank")
        yield page
        browser.close()


def after_close(page: Any, code: int, wait_ms: int) -> dict[str, Any]:
    source = base64.b64encode(CLIENT_JS.read_bytes()).decode()
    result: dict[str, Any] = page.evaluate(SCENARIO_JS, {"source": source, "code": code, "waitMs": wait_ms})
    return result


def test_1012_reconnects_at_once_and_resumes(chromium_page: Any) -> None:
    """1012 (server draining): a new socket within a few ms, no backoff wait, and it resumes after seq 7."""
    result = after_close(chromium_page, 1012, wait_ms=5)
    assert result["opened"] == 2
    assert result["resumed"] == [
        {"type": "resume", "session_id": "s1", "last_seq": 7, "request_id": "resume:s1", "batch": True}
    ]
    assert not any("retryAt" in state for state in result["states"])
    assert result["states"][-2]["state"] == "reconnecting"


def test_1001_reconnects_with_backoff(chromium_page: Any) -> None:
    """1001 (server going away): the client waits its backoff before the next socket, then resumes."""
    result = after_close(chromium_page, 1001, wait_ms=5)
    waits = [state for state in result["states"] if "retryAt" in state]
    assert len(waits) == 1 and waits[0]["state"] == "reconnecting"
    if waits[0]["retryInMs"] > 5:  # full jitter may draw a wait shorter than the 5 ms the scenario gives it
        assert result["opened"] == 1
