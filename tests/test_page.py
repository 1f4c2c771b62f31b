"""The page's server side: it renders, its static files are served under ASGI, it has no test-only route."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import Resolver404, resolve

from streaming.protocol import ErrorCode
from tests.servers import ROOT, DaphneServer

STATIC = ROOT / "streaming" / "static" / "streaming"
TEST_ROUTES = ["/test/drop-sockets", "/test/settle"]


def test_every_error_code_has_a_human_message() -> None:
    """app.js has a message for each protocol.ErrorCode, so no error reaches a creator as a bare code."""
    source = (STATIC / "app.js").read_text()
    block = source[source.index("const ERROR_MESSAGES") : source.index("};", source.index("const ERROR_MESSAGES"))]
    keys = set(re.findall(r"^\s+(\w+):", block, re.MULTILINE))
    assert keys == {code.value for code in ErrorCode}


def test_client_never_puts_the_token_in_the_url() -> None:
    """client.js authenticates with the subprotocol carrier only."""
    source = (STATIC / "client.js").read_text()
    assert "?token=" not in source and "`bearer.${token}`" in source


@pytest.mark.django_db
def test_page_loads_module_scripts() -> None:
    """GET / renders the page with static URLs and a module script."""
    body = Client().get("/").content.decode()
    assert '<script type="module" src="/static/streaming/app.js">' in body
    assert 'href="/static/streaming/app.css"' in body


@pytest.mark.parametrize("route", TEST_ROUTES)
def test_production_urlconf_has_no_test_routes(route: str) -> None:
    """The product's settings route no /test/* path; only the test servers' URLconf (tests/e2e_urls.py) does."""
    assert settings.ROOT_URLCONF == "creatornexus.urls"
    with pytest.raises(Resolver404):
        resolve(route)
    assert resolve(route, urlconf="tests.e2e_urls").url_name


@pytest.fixture(scope="module")
def production(django_db_setup: Any) -> Iterator[DaphneServer]:
    """Daphne with the product's own settings (not the test servers'), DEBUG off."""
    env = {
        "DJANGO_SETTINGS_MODULE": "creatornexus.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "test-only-secret-key-for-production-mode",
    }
    with DaphneServer(env=env) as server:
        yield server


@pytest.mark.e2e
def test_daphne_serves_static_files_in_production_mode(production: DaphneServer) -> None:
    """DJANGO_DEBUG=0: Daphne serves /static/streaming/client.js through servestatic, no collectstatic needed."""
    for name in ("client.js", "app.js", "follow.js", "saved.js", "app.css"):
        with urllib.request.urlopen(f"{production.http_url}/static/streaming/{name}", timeout=5) as response:
            assert response.status == 200
            assert response.read() == (STATIC / name).read_bytes()
    with urllib.request.urlopen(f"{production.http_url}/static/streaming/client.js", timeout=5) as response:
        assert "javascript" in response.headers["Content-Type"]


@pytest.mark.e2e
@pytest.mark.parametrize("route", TEST_ROUTES)
def test_production_server_answers_404_to_test_routes(production: DaphneServer, route: str) -> None:
    """A server on the product's settings has no test route: POST /test/... is a 404."""
    request = urllib.request.Request(f"{production.http_url}{route}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 404
