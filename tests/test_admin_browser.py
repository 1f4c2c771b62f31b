"""The admin in a real browser (Debian's Chromium) at 1280 px: the session and connection lists fit the screen."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from streaming.models import Connection, StreamSession
from tests.conftest import make_user
from tests.servers import DaphneServer
from tests.test_browser import ARTIFACTS, CHROMIUM_ARGS, WAIT_MS, _chromium_or_skip

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

# Per list: every column's width, the page's and the table box's overflow, and any id that wraps onto two lines.
LAYOUT_JS = """() => {
  const page = document.documentElement;
  const box = document.querySelector('#changelist .results');
  const ids = [...document.querySelectorAll('#result_list td code, #result_list th code')];
  return {
    page: [page.scrollWidth, page.clientWidth],
    box: [box.scrollWidth, box.clientWidth],
    rows: document.querySelectorAll('#result_list tbody tr').length,
    columns: [...document.querySelectorAll('#result_list thead th')].map((th) => [th.className, th.offsetWidth]),
    wrappedIds: ids.filter((code) => code.getClientRects().length > 1).map((code) => code.textContent),
  };
}"""


@pytest.fixture(scope="module")
def server(django_db_setup: Any) -> Iterator[DaphneServer]:
    with DaphneServer() as daphne:
        yield daphne


@pytest.fixture
def busy_day(transactional_db: Any) -> None:
    """A day's worth of rows that make columns wide: long names, 500-character topics, every status and code."""
    get_user_model().objects.create_superuser("root", "root@example.com", "pw-root")
    now = timezone.now()
    statuses = ["running", "completed", "failed", "cancelled"]
    codes = [1000, 1001, 1006, 4408, 4413, None]
    for n in range(12):
        user = make_user(f"creator-with-a-rather-long-name-{n:02d}")
        connection = Connection.objects.create(
            user=user,
            opened_at=now - timedelta(minutes=n),
            closed_at=None if codes[n % 6] is None else now,
            close_code=codes[n % 6],
            client_address=f"2001:db8:85a3::8a2e:370:{n:04x}",
            user_agent="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131 Safari",
            process_id=f"streaming-web-7f9c8d6b5-x2k4q:{1000 + n}:a1b2c3",
        )
        for k in range(3):
            status = statuses[(n + k) % 4]
            StreamSession.objects.create(
                owner=user,
                connection=connection,
                session_id=uuid.uuid4(),
                topic=("How to light a small studio on a budget with two lamps and a window " * 8)[:500],
                platform="instagram_reels",
                duration=180,
                status=status,
                provider="openai",
                estimated_words=450,
                words=123,
                error_code="ai_misconfigured" if status == "failed" else "",
                finished_at=None if status == "running" else now,
            )


def admin_page(browser: Any, server: DaphneServer) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    tab.goto(f"{server.http_url}/admin/login/")
    tab.fill("#id_username", "root")
    tab.fill("#id_password", "pw-root")
    tab.click("input[type=submit]")
    tab.wait_for_selector("#user-tools")
    return tab


@pytest.fixture
def chromium() -> Iterator[Any]:
    executable = _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.mark.parametrize(("path", "shot"), [("streamsession", "admin-sessions"), ("connection", "admin-connections")])
def test_admin_list_fits_1280_px(chromium: Any, server: DaphneServer, busy_day: None, path: str, shot: str) -> None:
    """At 1280 px the list needs no horizontal scrolling, and no id wraps; screenshot kept as an artifact."""
    tab = admin_page(chromium, server)
    tab.goto(f"{server.http_url}/admin/streaming/{path}/")
    tab.wait_for_selector("#result_list tbody tr")
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{shot}-1280.png"))  # the first screen, as an operator sees it
    tab.screenshot(path=str(ARTIFACTS / f"{shot}-1280-full.png"), full_page=True)
    layout = tab.evaluate(LAYOUT_JS)
    assert layout["rows"] == (36 if path == "streamsession" else 12), layout
    assert layout["page"][0] <= layout["page"][1], layout
    assert layout["box"][0] <= layout["box"][1], layout
    assert layout["wrappedIds"] == [], layout


def test_connection_and_session_pages_link_each_other(chromium: Any, server: DaphneServer, busy_day: None) -> None:
    """From a connection's row to its page, on to one of its sessions (full id shown), and back to the connection."""
    tab = admin_page(chromium, server)
    tab.goto(f"{server.http_url}/admin/streaming/connection/")
    first = tab.text_content("#result_list tbody tr:first-child th code")
    tab.click("#result_list tbody tr:first-child th a")
    tab.wait_for_selector("ul.sessions li a")
    full_id = tab.text_content(".field-id .readonly")
    assert full_id is not None and full_id.startswith(first or "?") and len(full_id) == 36
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "admin-connection-1280.png"), full_page=True)
    session_short = tab.text_content("ul.sessions li:first-child a code")
    tab.click("ul.sessions li:first-child a")
    tab.wait_for_selector(".field-session_id")
    assert (tab.text_content(".field-session_id .readonly") or "").startswith(session_short or "?")
    tab.screenshot(path=str(ARTIFACTS / "admin-session-1280.png"), full_page=True)
    tab.click(".field-connection_link a")
    tab.wait_for_selector(".field-id")
    assert tab.text_content(".field-id .readonly") == full_id
