"""The README's run command refuses an address in use with a clear message instead of hanging."""

from __future__ import annotations

import socket
import subprocess
import sys

from tests.servers import ROOT


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
