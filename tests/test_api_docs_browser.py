"""The API docs page (/api/docs/) in a real browser with every other host blocked: it renders and it calls the API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import access_for, make_user
from tests.servers import DaphneServer
from tests.test_browser import ARTIFACTS, CHROMIUM_ARGS, WAIT_MS, _chromium_or_skip

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


@pytest.fixture
def offline_page(django_db_setup: Any) -> Iterator[tuple[Any, DaphneServer, list[str]]]:
    """A Chromium tab that may reach the test server only, a server, and the requests refused elsewhere."""
    executable = _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    refused: list[str] = []
    with DaphneServer() as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 860})

        def only_the_server(route: Any) -> None:
            if urlsplit(route.request.url).netloc == urlsplit(server.http_url).netloc:
                route.continue_()
            else:
                refused.append(route.request.url)
                route.abort()

        context.route("**/*", only_the_server)
        tab = context.new_page()
        tab.set_default_timeout(WAIT_MS)
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        yield tab, server, refused
        context.close()
        browser.close()
        assert not errors, errors


def execute(page: Any, method: str, path: str, body: str | None = None) -> tuple[str, str]:
    """Open an operation, try it out, execute it: the status and body Swagger UI shows."""
    operation = page.locator(f".opblock-{method}:has(.opblock-summary-path[data-path='{path}'])")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    if body is not None:
        operation.locator("textarea.body-param__text").fill(body)
    operation.locator("button.execute").click()
    answer = operation.locator(".live-responses-table tbody .response").first
    answer.wait_for()
    status = answer.locator(".response-col_status").inner_text().strip()
    return status, answer.locator(".response-col_description pre").first.inner_text()


def test_docs_page_renders_and_calls_the_api_offline(
    offline_page: tuple[Any, DaphneServer, list[str]], transactional_db: Any
) -> None:
    """Swagger UI lists every operation from this server alone; signing in and, authorized, listing scripts work."""
    user = make_user("alice")
    page, server, refused = offline_page
    page.goto(f"{server.http_url}/api/docs/")
    page.wait_for_selector(".opblock")
    paths = page.eval_on_selector_all(".opblock-summary-path", "nodes => nodes.map(n => n.dataset.path)")
    assert {"/api/auth/token/", "/api/scripts/", "/api/scripts/{id}/", "/healthz", "/readyz"} <= set(paths)

    status, body = execute(page, "post", "/api/auth/token/", '{"username": "alice", "password": "pw-alice"}')
    assert status == "200" and '"access"' in body

    page.click("button.authorize")
    page.fill(".auth-container input", access_for(user))
    page.click(".auth-btn-wrapper button.authorize")
    page.click(".auth-btn-wrapper button.btn-done")
    status, body = execute(page, "get", "/api/scripts/")
    assert status == "200" and '"count": 0' in body
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=False)
    assert not refused, f"the docs page asked other hosts for {refused}"
