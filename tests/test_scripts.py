"""The README's run command refuses an address in use with a clear message instead of hanging."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.servers import ROOT, DaphneServer


def check(addr: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(ROOT / "scripts" / "addr_free.py"), addr]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def test_address_in_use_is_refused_with_a_message() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        addr = f"127.0.0.1:{taken.getsockname()[1]}"
        result = check(addr)
    assert result.returncode == 1
    assert f"Cannot serve on {addr}: Address already in use." in result.stderr
    assert "ADDR=" in result.stderr


def test_free_address_passes() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert check(f"127.0.0.1:{port}").returncode == 0


def test_nonsense_address_is_refused() -> None:
    result = check("localhost:http")
    assert result.returncode == 1 and "not a host:port" in result.stderr


@pytest.mark.e2e
def test_runserver_logs_one_line_per_request() -> None:
    """`manage.py runserver` (scripts/run) prints each request once, 404s included."""
    server = DaphneServer({"DJANGO_DEBUG": "1"}, server="runserver").start()
    try:
        for path in ("/readyz", "/no-such-page"):  # (the harness itself polls /healthz)
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(f"{server.http_url}{path}", timeout=5).close()
    finally:
        server.sigterm()
        server.wait_exit(timeout=30)
    log = server.log_text()
    assert log.count("GET /readyz") == 1, log
    assert log.count("/no-such-page") == 1, log
