"""The page's usage line and the daily budget's refusal, in headless Chromium against a real Daphne process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests import test_browser
from tests.servers import DaphneServer

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

browser = test_browser.browser
page = test_browser.page
creator = test_browser.creator


@pytest.fixture(scope="module")
def budget_server(django_db_setup: Any) -> Iterator[DaphneServer]:
    """A daily budget of 100 words; the mock writes as fast as it can."""
    with DaphneServer(env={"USER_DAILY_WORD_LIMIT": "100", "MOCK_STREAM_DELAY_MS": "0"}) as daphne:
        yield daphne


def test_usage_line_and_budget_refusal(page: Any, budget_server: DaphneServer, creator: Any) -> None:
    """The line under the form shows the day's words of the budget; once spent, Write script says when it resets."""
    test_browser.signed_in(page, budget_server)
    page.wait_for_selector("#usage:not([hidden])")
    assert page.text_content("#usage").startswith("Today: 0 of 100 words · resets ")
    page.fill("#topic", "pour-over coffee")
    page.fill("#duration", "60")  # 150 words: it starts within budget, so it runs to its end
    page.click("#generate")
    page.wait_for_selector("#output[data-status=completed]")
    page.wait_for_selector("#usage[data-spent=true]")
    assert page.text_content("#usage").startswith("Today: 150 of 100 words")
    page.fill("#topic", "cold brew")
    page.click("#generate")
    page.wait_for_selector("#output[data-status=failed]")
    alert = page.text_content("#output-alert")
    assert alert.startswith("You've used today's word budget. You can write again from "), alert
