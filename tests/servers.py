"""Real server processes for end-to-end tests: Daphne (or uvicorn) on a free port, against the test database."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, ClassVar

from django.conf import settings

from tests.openapi import check_response

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 20


def _message_of(line: str) -> str:
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict) or "message" not in record:
        return line
    return "\n".join(str(record[key]) for key in ("message", "exc_info") if key in record)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_database_url() -> str:
    """The database pytest-django set up, as a DATABASE_URL a child process can use."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user, password = db.get("USER") or "", db.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


# The commands docs/deploy.md gives, on a port of the test's choosing.
SERVER_COMMANDS: dict[str, list[str]] = {
    "daphne": ["-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", "creatornexus.asgi:application"],
    "uvicorn": [
        *("-m", "uvicorn", "creatornexus.asgi:application", "--host", "127.0.0.1", "--port", "{port}"),
        *("--ws", "websockets-sansio", "--ws-per-message-deflate", "false", "--lifespan", "off", "--no-access-log"),
    ],
    "granian": [
        *("-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", "{port}"),
        *("--workers", "1", "creatornexus.asgi:application"),
    ],
    # Daphne's development server; without the autoreloader it owns the process's signals (docs/deploy.md).
    "runserver": ["manage.py", "runserver", "--noreload", "127.0.0.1:{port}"],
}


class DaphneServer:
    """`daphne creatornexus.asgi:application` (or another server of SERVER_COMMANDS) in a child process.

    Its output goes to a log file.
    """

    running: ClassVar[set[DaphneServer]] = set()

    def __init__(self, env: dict[str, str] | None = None, log_dir: Path | None = None, server: str = "daphne") -> None:
        self.server = server
        self.port = free_port()
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.e2e_settings",
            "DATABASE_URL": test_database_url(),
            "MOCK_STREAM_DELAY_MS": "0",
            "PYTHONUNBUFFERED": "1",
            "MALLOC_ARENA_MAX": "1",  # part of every server's command in docs/deploy.md
            # Production's defaults (DEBUG off), over plain HTTP; the keys come from the test run (tests/settings.py).
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "SHUTDOWN_GRACE_S": "3",  # teardown (SIGTERM) waits for running streams at most this long
            **(env or {}),
        }
        self.log_path = (log_dir or ROOT / "test-artifacts") / f"{server}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/stream/"

    def start(self) -> DaphneServer:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, *(arg.format(port=self.port) for arg in SERVER_COMMANDS[self.server])],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.wait_ready()
        DaphneServer.running.add(self)
        return self

    def settle(self) -> None:
        """Make the server commit the rows it batches, before the test database is truncated under it."""
        if self.process is None or self.process.poll() is not None:
            return
        request = urllib.request.Request(f"{self.http_url}/test/settle", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5):
                pass
        except OSError:
            pass  # a server that cannot answer is not writing either

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.server} exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.http_url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.server} did not answer /healthz within {START_TIMEOUT_S}s; see {self.log_path}")

    def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        """A GET to the server: (status, parsed JSON body)."""
        import json
        import urllib.error

        request = urllib.request.Request(f"{self.http_url}{path}")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                answer = (
                    response.status,
                    response.headers.get("Content-Type", ""),
                    json.loads(response.read() or b"null"),
                )
        except urllib.error.HTTPError as exc:
            answer = exc.code, exc.headers.get("Content-Type", ""), json.loads(exc.read() or b"null")
        check_response("GET", path, *answer)  # every answer of a real server against the OpenAPI schema
        return answer[0], answer[2]

    def kill9(self) -> None:
        """Die like a crashed machine: no cleanup, no close frames."""
        DaphneServer.running.discard(self)
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def sigterm(self) -> None:
        """Ask the process to stop as a deploy does (SIGTERM); it drains and exits by itself."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to exit; its exit code."""
        assert self.process is not None
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            # What the server was doing when it did not stop: the end of its log.
            tail = self.log_text()[-3000:]
            raise AssertionError(f"server still running after {timeout} s; its log ends:\n{tail}") from exc
        DaphneServer.running.discard(self)
        return code

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_messages(self) -> str:
        """The log as a person reads it: each JSON line (LOG_FORMAT=json, production's) as its message and
        traceback, other lines as they are."""
        return "\n".join(_message_of(line) for line in self.log_text().splitlines())

    def stop(self) -> None:
        DaphneServer.running.discard(self)
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()

    def __enter__(self) -> DaphneServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
