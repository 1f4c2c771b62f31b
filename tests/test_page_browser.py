"""What a creator meets on the page, in headless Chromium against a real Daphne process: the script box follows a
long script, notes stay, anything with words can be copied, an interrupted stream says so, every saved script is
reachable, and nothing hides under the header. Screenshots at phone and desktop width go to test-artifacts/."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streaming.models import StreamSession
from tests import test_browser
from tests.conftest import access_for
from tests.servers import DaphneServer
from tests.test_browser import (
    ARTIFACTS,
    VIEW_JS,
    WAIT_MS,
    generate,
    saved_script,
    signed_in,
    wait_for_words,
    words_on_page,
)

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

browser = test_browser.browser
creator = test_browser.creator

# 20 ms a word as in test_browser.py; a daily budget, so the page shows the longest form of its usage line.
PAGE_ENV = {**test_browser.STREAM_ENV, "USER_DAILY_WORD_LIMIT": "100000"}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
DESKTOP = {"viewport": {"width": 1280, "height": 860}}
WIDTHS = {"phone": PHONE, "desktop": DESKTOP}

# At every word that lands in the script once it outgrew its box: whether the last word is inside the box's visible
# part, and the box inside the window (on a phone it must not run past the bottom of the screen).
WATCH_LAST_WORD_JS = """() => {
  const box = document.querySelector('#script-box');
  const script = document.querySelector('#script');
  window.__words = {seen: 0, hidden: [], overflowed: false};
  const lastWord = () => {
    const last = [...script.childNodes].reverse().find((node) => node.textContent.trim());
    const range = document.createRange();
    range.selectNodeContents(last);
    return [...range.getClientRects()].pop();
  };
  new MutationObserver(() => {
    if (box.scrollHeight <= box.clientHeight) return;
    window.__words.seen += 1;
    window.__words.overflowed ||= box.scrollHeight > 2 * box.clientHeight;
    const word = lastWord();
    const seen = box.getBoundingClientRect();
    const inBox = word.top >= seen.top - 1 && word.bottom <= seen.bottom + 1;
    if (!inBox || seen.bottom > innerHeight) {
      window.__words.hidden.push({inBox, boxBottom: Math.round(seen.bottom), window: innerHeight});
    }
  }).observe(script, {childList: true});
}"""
LAST_WORD_VISIBLE_JS = """() => {
  const box = document.querySelector('#script-box').getBoundingClientRect();
  const range = document.createRange();
  range.selectNodeContents(document.querySelector('#script').lastChild);
  const word = [...range.getClientRects()].pop();
  return word.top >= box.top - 1 && word.bottom <= box.bottom + 1;
}"""
# How many lines each part of the usage line takes ("Today: … words", "resets …").
USAGE_LINES_JS = "() => [...document.querySelectorAll('#usage span')].map((part) => part.getClientRects().length)"
# The title's top against the sticky header's bottom, once a scroll the page started has come to rest.
TITLE_CLEAR_OF_HEADER_JS = """() => {
  const header = document.querySelector('.topbar').getBoundingClientRect();
  const title = document.querySelector('#output-title').getBoundingClientRect();
  return {header: header.bottom, title: title.top};
}"""
# Which script of Saved scripts (1 = the first) has keyboard focus.
FOCUSED_ITEM_JS = """() => [...document.querySelectorAll('#saved-list li')]
  .indexOf(document.activeElement.closest('li')) + 1"""
RECORD_SCROLL_END_JS = """() => {
  window.__scrolled = false;
  document.addEventListener('scrollend', () => { window.__scrolled = true; }, {once: true});
}"""


@pytest.fixture(scope="module")
def server(django_db_setup: Any) -> Iterator[DaphneServer]:
    with DaphneServer(env=PAGE_ENV) as daphne:
        yield daphne


def open_tab(browser: Any, width: str) -> tuple[Any, Any, list[str]]:
    """A context (clipboard allowed) and a tab at this width; the list collects page errors."""
    context = browser.new_context(**WIDTHS[width], permissions=["clipboard-read", "clipboard-write"])
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, tab, errors


@pytest.fixture(params=list(WIDTHS))
def any_page(request: pytest.FixtureRequest, browser: Any) -> Iterator[Any]:
    """The page at phone width, then at desktop width."""
    context, tab, errors = open_tab(browser, request.param)
    tab.width_name = request.param
    yield tab
    context.close()
    assert not errors, errors


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context, tab, errors = open_tab(browser, "desktop")
    yield tab
    context.close()
    assert not errors, errors


def screenshot(page: Any, name: str) -> Path:
    """What the creator sees in the window (a full-page shot would paint the sticky header mid-page)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"page-{name}.png"
    page.screenshot(path=str(path))
    return path


def no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], f"the page is {width[0]} px wide in a {width[1]} px window"


# ---------------------------------------------------------------- the script box follows


def test_long_script_keeps_its_last_word_in_view(any_page: Any, server: DaphneServer, creator: Any) -> None:
    """A 300-second YouTube script: at every word that arrives, the last word is visible in the script box."""
    page = any_page
    signed_in(page, server)
    page.evaluate(WATCH_LAST_WORD_JS)
    generate(page, "a full studio tour for new subscribers", duration=300, platform="youtube")
    wait_for_words(page, 400)
    screenshot(page, f"{page.width_name}-streaming")
    page.wait_for_selector("#output[data-status=completed]", timeout=60_000)
    words = page.evaluate("() => window.__words")
    assert words["overflowed"], "the script never outgrew its box: nothing was tested"
    # Checked at every update once the script outgrew its box: the page asks for multi-word frames (about two
    # words each at this pace), so a 750-word script makes a few hundred updates past that point.
    assert words["seen"] >= 200 and words["hidden"] == [], {**words, "hidden": words["hidden"][:3]}
    assert words_on_page(page) == saved_script(page, server, creator)["words"] == 750
    no_sideways_scroll(page)
    assert page.text_content("#usage").startswith("Today: 750 of 100,000 words · resets ")
    assert page.evaluate(USAGE_LINES_JS) == [1, 1], "a part of the usage line broke across lines"
    screenshot(page, f"{page.width_name}-finished")


def test_reader_who_scrolled_up_is_left_there(page: Any, server: DaphneServer, creator: Any) -> None:
    """Scrolled up mid-stream: the box stays put while words arrive; back at the bottom, it follows again."""
    signed_in(page, server)
    generate(page, "lenses for beginners", duration=300, platform="youtube")
    page.wait_for_function("() => document.querySelector('#script-box').scrollTop > 200")
    page.evaluate("() => { document.querySelector('#script-box').scrollTop = 0; }")
    later = words_on_page(page) + 60
    wait_for_words(page, later)
    assert page.evaluate("() => document.querySelector('#script-box').scrollTop") == 0
    assert page.is_visible("#jump")
    page.click("#jump")
    assert page.is_hidden("#jump")
    wait_for_words(page, later + 30)
    assert page.evaluate(LAST_WORD_VISIBLE_JS)
    page.click("#cancel")
    page.wait_for_selector("#output[data-status=cancelled]")


# ---------------------------------------------------------------- notes stay


def test_picking_up_note_stays_while_words_arrive(page: Any, server: DaphneServer, creator: Any) -> None:
    """Reloaded mid-stream: "Picking up where you left off…" is there, and still there 40 words later."""
    signed_in(page, server)
    generate(page, "street photography at night", duration=120)
    wait_for_words(page, 20)
    page.reload()
    page.wait_for_selector("#output[data-status=running]")
    assert page.text_content("#action-note") == "Picking up where you left off…"
    wait_for_words(page, words_on_page(page) + 40)
    assert page.is_visible("#action-note")
    assert page.text_content("#action-note") == "Picking up where you left off…"
    page.wait_for_selector("#output[data-status=completed]")
    assert page.text_content("#action-note") == "Saved to your scripts."


def test_opening_a_saved_script_while_writing_says_why_not(page: Any, server: DaphneServer, creator: Any) -> None:
    """A saved script clicked while one is written: a note beside the list says what to do, and it stays."""
    older = saved_row(creator, "an older script")
    signed_in(page, server)
    generate(page, "three hooks that work", duration=120)
    wait_for_words(page, 10)
    page.click(f"#saved-list [data-script-id='{older.pk}']")
    page.wait_for_selector("#saved-note:visible")
    assert page.text_content("#saved-note") == "Wait for the current script to finish, or cancel it."
    wait_for_words(page, words_on_page(page) + 30)
    assert page.is_visible("#saved-note")
    assert page.text_content("#output-title") == "three hooks that work"
    page.click("#cancel")
    page.wait_for_selector("#output[data-status=cancelled]")
    assert page.is_hidden("#saved-note")


# ---------------------------------------------------------------- copy and download


def test_copy_and_download_after_cancel(page: Any, server: DaphneServer, creator: Any) -> None:
    """A cancelled script's words can be copied and downloaded: both hold exactly the words the server kept."""
    signed_in(page, server)
    generate(page, "budget microphones", duration=120)
    wait_for_words(page, 20)
    page.click("#cancel")
    page.wait_for_selector("#output[data-status=cancelled]")
    kept = ended_row(page, server, creator)
    assert kept["status"] == "cancelled" and kept["words"] >= 20
    page.click("#copy")
    page.wait_for_selector("#action-note:has-text('Copied')")
    assert page.text_content("#action-note") == f"Copied {kept['words']} words to the clipboard."
    assert page.evaluate("() => navigator.clipboard.readText()") == kept["script"]
    with page.expect_download() as download:
        page.click("#download")
    assert Path(download.value.path()).read_text() == kept["script"]
    assert download.value.suggested_filename == "budget-microphones-tiktok.txt"


# ---------------------------------------------------------------- every saved script, labelled


@pytest.fixture
def many_scripts(creator: Any) -> list[StreamSession]:
    """25 saved scripts, #1 the newest; #2 running, #3 failed, #4 cancelled; #21 is the first of page two."""
    states: dict[int, dict[str, Any]] = {
        2: {"status": "running", "words": 0, "script": ""},
        3: {"status": "failed", "error_code": "ai_timeout", "error_message": "The AI call timed out."},
        4: {"status": "cancelled"},
    }
    return [saved_row(creator, f"Saved script #{n}", **states.get(n, {})) for n in range(25, 0, -1)]


def test_saved_scripts_load_more_reaches_the_21st(
    any_page: Any, server: DaphneServer, creator: Any, many_scripts: list[StreamSession]
) -> None:
    """Saved scripts shows 20, then Load more brings the rest; the 21st opens with its title clear of the header.
    Running, failed (with why) and cancelled scripts say so."""
    page = any_page
    signed_in(page, server)
    page.wait_for_selector("#saved-more:visible")
    assert page.locator("#saved-list li").count() == 20
    assert page.text_content("#saved-count") == "20 of 25 shown"
    labels = {n: page.locator(f"#saved-list li:nth-child({n}) .saved-state") for n in (1, 2, 3, 4)}
    assert labels[1].count() == 0
    assert labels[2].inner_text() == "Writing"
    assert labels[3].inner_text().split("\n") == ["Failed", "The AI writer took too long to answer."]
    assert labels[4].inner_text() == "Cancelled"
    assert "writing now" in page.text_content("#saved-list li:nth-child(2) .saved-meta")
    page.locator("#saved-title").scroll_into_view_if_needed()
    screenshot(page, f"{page.width_name}-saved-first-page")
    page.click("#saved-more")
    page.wait_for_selector("#saved-list li:nth-child(25)")
    assert page.is_hidden("#saved-more") and page.is_hidden("#saved-count")
    twenty_first = page.locator("#saved-list li:nth-child(21) button")
    assert twenty_first.text_content().startswith("Saved script #21")
    assert page.evaluate(FOCUSED_ITEM_JS) == 21, "keyboard focus did not move to the first script loaded"
    twenty_first.scroll_into_view_if_needed()
    screenshot(page, f"{page.width_name}-saved")
    page.evaluate(RECORD_SCROLL_END_JS)
    page.keyboard.press("Enter")  # the focused 21st script, opened from the keyboard
    page.wait_for_function("() => document.querySelector('#output-title').textContent === 'Saved script #21'")
    page.wait_for_function("() => window.__scrolled")
    edges = page.evaluate(TITLE_CLEAR_OF_HEADER_JS)
    assert edges["title"] >= edges["header"], f"the title is under the header: {edges}"
    assert page.get_attribute("#output", "data-status") == "completed"
    assert not page.is_disabled("#copy")
    screenshot(page, f"{page.width_name}-opened")


def test_script_writing_in_another_tab_is_followed_live(page: Any, server: DaphneServer, creator: Any) -> None:
    """A script being written in another tab is listed as Writing; opened here, it streams to its end, intact."""
    writer = page.context.new_page()
    signed_in(writer, server)
    generate(writer, "lighting a room with one lamp", duration=120)
    wait_for_words(writer, 10)
    signed_in(page, server)
    page.wait_for_selector("#saved-list [data-status=running]")
    page.click("#saved-list [data-status=running]")
    page.wait_for_selector("#output[data-status=running]")
    assert page.text_content("#output-title") == "lighting a room with one lamp"
    assert page.is_visible("#cancel")
    page.wait_for_selector("#output[data-status=completed]")
    writer.wait_for_selector("#output[data-status=completed]")
    assert (
        page.text_content("#script")
        == writer.text_content("#script")
        == saved_script(writer, server, creator)["script"]
    )
    page.wait_for_selector("#saved-list li:nth-child(1) button[data-status=completed]")


# ---------------------------------------------------------------- a restart mid-stream


@pytest.fixture
def restartable(django_db_setup: Any) -> Iterator[list[DaphneServer]]:
    """An embedded server (words in memory only, like `scripts/run`); the list gets the one that replaces it."""
    servers = [DaphneServer(env=PAGE_ENV).start()]
    yield servers
    for daphne in servers:
        daphne.stop()


def restart(servers: list[DaphneServer]) -> DaphneServer:
    """Kill the server as a dev-server reload does (no drain: its words in memory are gone); start a new one on
    the same port, where the page reconnects by itself."""
    old = servers[-1]
    old.kill9()
    new = DaphneServer(env=PAGE_ENV)
    new.port, new.log_path = old.port, old.log_path
    servers.append(new.start())
    return new


def test_restart_mid_stream_says_interrupted(page: Any, restartable: list[DaphneServer], creator: Any) -> None:
    """Server restarted mid-stream: the page says the script was interrupted and what to do (not that it finished
    long ago), keeps its words for copy and download, and Saved scripts soon shows it failed, with why."""
    signed_in(page, restartable[0])
    generate(page, "podcast intros that hook", duration=120)
    wait_for_words(page, 20)
    restart(restartable)
    page.wait_for_selector("#output[data-status=interrupted]")
    page.wait_for_selector("#output-alert:visible")
    words = page.evaluate(VIEW_JS)["words"]
    assert words >= 20
    alert = page.text_content("#output-alert")
    assert alert == (
        f"The server restarted while this script was being written, so it stopped after {words} words. "
        "They are kept here: copy or download them, or press Write it again for a whole script."
    )
    assert "a while ago" not in alert
    assert not page.is_disabled("#copy") and not page.is_disabled("#download") and page.is_visible("#rewrite")
    assert words_on_page(page) == words
    session_id = page.evaluate(VIEW_JS)["session_id"]
    row = page.locator("#saved-list li").first
    page.wait_for_selector("#saved-list li:nth-child(1) [data-status=failed]")
    assert row.locator(".saved-title").text_content() == "podcast intros that hook"
    assert row.locator(".saved-reason").text_content() == "The server writing this script stopped unexpectedly."
    assert StreamSession.objects.get(session_id=session_id).error_code == "worker_lost"
    screenshot(page, "desktop-interrupted")
    page.click("#rewrite")
    page.wait_for_selector("#output[data-status=running]")
    assert page.text_content("#output-title") == "podcast intros that hook"


def test_stream_that_ended_while_away_opens_saved(page: Any, restartable: list[DaphneServer], creator: Any) -> None:
    """A stream that ended while the page was away and can no longer be replayed: the page shows the saved script
    and says it ended meanwhile, with no error."""
    signed_in(page, restartable[0])
    generate(page, "a week of shorts in a day", duration=20)
    page.wait_for_selector("#output[data-status=completed]")
    saved = saved_script(page, restartable[0], creator)
    # As if the page had closed after 5 words: its view and its client still expect the rest.
    page.evaluate(
        """() => {
          const view = JSON.parse(sessionStorage.getItem('creatornexus.view'));
          const head = view.text.split(/(?<=\\S)(?=\\s)/).slice(0, 5).join('');
          sessionStorage.setItem('creatornexus.view', JSON.stringify(
            {...view, status: 'running', text: head, words: 5, progress: 0.1, script_id: undefined}));
          sessionStorage.setItem('creatornexus.streams', JSON.stringify([{session_id: view.session_id, last_seq: 5}]));
        }"""
    )
    restart(restartable)
    page.reload()
    page.wait_for_selector("#output[data-status=completed]")
    page.wait_for_selector("#action-note:has-text('while you were away')")
    assert page.text_content("#action-note") == "It ended while you were away; this is the saved script."
    assert page.text_content("#script") == saved["script"]
    assert page.is_hidden("#output-alert")


# ---------------------------------------------------------------- helpers


def saved_row(owner: Any, topic: str, **fields: Any) -> StreamSession:
    values = {
        "platform": "tiktok",
        "duration": 60,
        "provider": "mock",
        "status": "completed",
        "estimated_words": 150,
        "script": f"{topic}: the words of a saved script.",
        "words": 7,
        **fields,
    }
    return StreamSession.objects.create(owner=owner, session_id=uuid.uuid4(), topic=topic, **values)


def ended_row(page: Any, server: DaphneServer, creator: Any) -> dict[str, Any]:
    """The saved script of the stream on screen, found by its session id (only a completed stream names its
    script_id), once its row has left `running`: the owner sends the end first and saves the row after."""
    session_id = page.evaluate(VIEW_JS)["session_id"]
    deadline = time.monotonic() + 5
    while True:
        status, body = server.get(f"/api/scripts/?session_id={session_id}", token=access_for(creator))
        assert status == 200 and body["count"] == 1, body
        if body["results"][0]["status"] != "running":
            break
        assert time.monotonic() < deadline, "the row still says running"
        time.sleep(0.05)
    status, script = server.get(f"/api/scripts/{body['results'][0]['id']}/", token=access_for(creator))
    assert status == 200, script
    return dict(script)
