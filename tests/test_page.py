"""The page's server side: it renders, its static files are served under ASGI, test-only routes stay off."""

from __future__ import annotations

import re
import urllib.request
from typing import Any

import pytest
from django.test import Client
from django.urls import NoReverseMatch, reverse

from streaming.protocol import ErrorCode
from tests.servers import ROOT, DaphneServer

STATIC = ROOT / "streaming" / "static" / "streaming"


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


def test_test_routes_are_off_by_default() -> None:
    """Without STREAMING_TEST_ROUTES=1 the socket-dropping route does not exist."""
    with pytest.raises(NoReverseMatch):
        reverse("test-drop-sockets")


@pytest.mark.e2e
def test_daphne_serves_static_files_in_production_mode(django_db_setup: Any) -> None:
    """DJANGO_DEBUG=0: Daphne serves /static/streaming/client.js through servestatic, no collectstatic needed."""
    env = {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "test-only-secret-key-for-static-files"}
    with DaphneServer(env=env) as server:
        for name in ("client.js", "app.js", "app.css"):
            with urllib.request.urlopen(f"{server.http_url}/static/streaming/{name}", timeout=5) as response:
                assert response.status == 200
                assert response.read() == (STATIC / name).read_bytes()
        with urllib.request.urlopen(f"{server.http_url}/static/streaming/client.js", timeout=5) as response:
            assert "javascript" in response.headers["Content-Type"]
