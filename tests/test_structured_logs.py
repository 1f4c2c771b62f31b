"""Structured logs: one JSON object per line with the connection, session and user it is about; no token, no script."""

from __future__ import annotations

import asyncio
import contextvars
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from creatornexus import logcontext
from creatornexus.logformat import JsonFormatter, PlainFormatter
from creatornexus.redact import REDACTED, RedactTokens
from streaming.outbox import Outbox
from tests.conftest import access_for
from tests.servers import ROOT, DaphneServer
from tests.wsclient import open_socket

# Production settings need keys of their own (fail closed); these are made up for the child processes.
KEYS = {"DJANGO_SECRET_KEY": "k" * 50, "JWT_SECRET": "j" * 50}
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoiMSJ9.c2lnbmF0dXJlLXBhcnQ"


def record(message: str, *args: Any, exc_info: Any = None, **extra: Any) -> logging.LogRecord:
    line = logging.LogRecord("streaming.runner", logging.WARNING, __file__, 1, message, args, exc_info)
    line.__dict__.update(extra)
    return line


def stamped(line: logging.LogRecord, **bound: Any) -> logging.LogRecord:
    """The record as the context filter leaves it, with these ids bound in a context of its own."""

    def run() -> logging.LogRecord:
        if "connection" in bound:
            logcontext.bind_connection(bound["connection"], bound.get("user"))
        if "session" in bound:
            logcontext.bind_session(bound["session"])
        logcontext.StampContext().filter(line)
        return line

    return contextvars.copy_context().run(run)


# ---------------------------------------------------------------- formats, without I/O


def fail(message: str) -> None:
    raise ValueError(message)


def test_json_line_is_one_object_with_the_ids() -> None:
    """A message and a traceback with newlines still make one line, with time, level, logger and the bound ids."""
    try:
        fail("first\nsecond")
    except ValueError:
        line = record("lost %s\nafter %d words", "it", 3, exc_info=sys.exc_info())
    text = JsonFormatter().format(stamped(line, connection="c-1", user=7, session="s-1"))
    assert "\n" not in text
    fields = json.loads(text)
    assert fields["message"] == "lost it\nafter 3 words"
    assert (fields["level"], fields["logger"]) == ("WARNING", "streaming.runner")
    assert (fields["connection_id"], fields["session_id"], fields["user_id"]) == ("c-1", "s-1", 7)
    assert fields["exc_info"].startswith("Traceback") and "ValueError: first\nsecond" in fields["exc_info"]
    assert fields["time"].endswith("+00:00")


def test_ids_a_line_does_not_have_are_left_out() -> None:
    """A line about no connection has no id fields at all (not nulls)."""
    fields = json.loads(JsonFormatter().format(stamped(record("ready"))))
    assert not {"connection_id", "session_id", "user_id"} & set(fields)


def test_extra_names_another_stream_over_the_bound_ids() -> None:
    """A line about one stream logged from another's task (a store flush) names that stream, and no connection."""
    line = record("restoring", **logcontext.about(session="s-other", user=9))
    fields = json.loads(JsonFormatter().format(stamped(line, connection="c-mine", user=1, session="s-mine")))
    assert fields["session_id"] == "s-other" and fields["user_id"] == 9
    assert "connection_id" not in fields


def test_plain_line_ends_with_the_ids() -> None:
    """Local use: one readable line, the ids at its end."""
    text = PlainFormatter().format(stamped(record("stream started"), connection="c-1", user=7, session="s-1"))
    assert text.endswith("WARNING streaming.runner stream started [connection=c-1 session=s-1 user=7]")


def test_tasks_started_by_a_socket_carry_its_ids() -> None:
    """What a connection's task starts (its generations) inherits the connection and user; the session is its own."""
    seen: list[tuple[Any, ...]] = []

    async def generation() -> None:
        logcontext.bind_session("s-1")
        seen.append((logcontext.connection_id.get(), logcontext.user_id.get(), logcontext.session_id.get()))

    async def socket() -> None:
        logcontext.bind_connection("c-1", 7)
        await asyncio.create_task(generation())
        seen.append((logcontext.connection_id.get(), logcontext.user_id.get(), logcontext.session_id.get()))

    contextvars.copy_context().run(asyncio.run, socket())
    assert seen == [("c-1", 7, "s-1"), ("c-1", 7, None)]


async def test_overflow_line_names_the_slow_socket(caplog: pytest.LogCaptureFixture) -> None:
    """A socket overflowed by a frame from another socket's generation: the line names the slow socket."""
    caplog.set_level(logging.INFO, logger="streaming.outbox")
    never = asyncio.Event()

    async def unread(message: dict[str, Any]) -> None:
        await never.wait()  # a client that does not read

    def slow_socket() -> Outbox:
        logcontext.bind_connection("c-slow", 7)
        return Outbox(unread, limit=10)

    def other_generation() -> None:
        logcontext.bind_connection("c-other", 8)
        logcontext.bind_session("s-other")
        outbox.put("first")  # handed to the server, which waits on the client
        outbox.put("x" * 20)  # queued behind it, past the limit

    outbox = contextvars.copy_context().run(slow_socket)
    contextvars.copy_context().run(other_generation)
    await outbox.aclose()
    (line,) = [line for line in caplog.records if line.name == "streaming.outbox"]
    assert "stopped reading" in line.getMessage()
    assert (line.connection_id, line.user_id, line.session_id) == ("c-slow", 7, None)


# ---------------------------------------------------------------- the handler settings.LOGGING configures


@pytest.fixture
def console() -> Iterator[tuple[logging.Handler, io.StringIO]]:
    """The root logger's console handler (settings.LOGGING), writing to a buffer for the test."""
    (handler,) = [h for h in logging.getLogger().handlers if any(isinstance(f, RedactTokens) for f in h.filters)]
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield handler, buffer
    handler.setStream(previous)


def test_redaction_runs_before_the_formatter(console: tuple[logging.Handler, io.StringIO]) -> None:
    """The handler redacts first, then stamps ids; the JSON it writes holds [redacted], never the token."""
    handler, buffer = console
    assert [type(f) for f in handler.filters] == [RedactTokens, logcontext.StampContext]
    handler.setFormatter(JsonFormatter())
    handler.handle(stamped(record("socket %s", f"/ws/stream/?token={JWT}"), connection="c-1", user=7))
    line = json.loads(buffer.getvalue())
    assert line["message"] == f"socket /ws/stream/?token={REDACTED}"
    assert JWT not in buffer.getvalue()
    assert line["connection_id"] == "c-1"


def settings_of(env: dict[str, str], expression: str) -> subprocess.CompletedProcess[str]:
    """Import the product's settings in a child process with this environment and print an expression of them."""
    return subprocess.run(
        [sys.executable, "-c", f"import creatornexus.settings as s; print({expression})"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), **KEYS, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "json json"),
        ({"LOG_FORMAT": ""}, "json json"),  # as .env.example leaves it
        ({"DJANGO_DEBUG": "1"}, "plain plain"),
        ({"LOG_FORMAT": "plain"}, "plain plain"),
        ({"DJANGO_DEBUG": "1", "LOG_FORMAT": "JSON"}, "json json"),
    ],
)
def test_json_unless_debug_or_asked(env: dict[str, str], expected: str) -> None:
    """Production (DEBUG off) writes JSON; local use (DEBUG on) plain lines; LOG_FORMAT overrides."""
    result = settings_of(env, 's.LOG_FORMAT, s.LOGGING["handlers"]["console"]["formatter"]')
    assert result.stdout.strip() == expected, result.stderr


def test_unknown_log_format_stops_the_start() -> None:
    """LOG_FORMAT=xml fails at once, naming the variable and what it accepts."""
    result = settings_of({"LOG_FORMAT": "xml"}, "s.LOG_FORMAT")
    assert result.returncode != 0
    assert "LOG_FORMAT='xml': Input should be '', 'json' or 'plain'" in result.stderr


def test_python_warnings_are_json_lines_too() -> None:
    """A warning once the app has set logging up is a JSON line of py.warnings, not a bare line on stderr."""
    code = "import django, warnings; django.setup(); warnings.warn('careful now')"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "DJANGO_SETTINGS_MODULE": "creatornexus.settings", **KEYS},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    (line,) = json_lines(result.stderr)
    assert line["logger"] == "py.warnings" and "UserWarning: careful now" in line["message"]


def test_short_metrics_token_stops_the_start() -> None:
    """A guessable scrape token fails at once, naming the variable."""
    result = settings_of({"METRICS_TOKEN": "short"}, "s.METRICS_TOKEN")
    assert result.returncode != 0
    assert "METRICS_TOKEN must be at least 32 characters long" in result.stderr


# ---------------------------------------------------------------- a real server's production output

TOPIC = "keeping a sourdough starter alive on holiday"


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of the output as a JSON object; fails on the first line that is not one."""
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            fields = json.loads(line)
        except ValueError:
            pytest.fail(f"line {number} is not JSON: {line!r}")
        assert isinstance(fields, dict) and {"time", "level", "logger", "message"} <= set(fields), line
        lines.append(fields)
    return lines


def script_runs(script: str, size: int = 4) -> set[str]:
    """Every run of `size` consecutive words of the script: any of them in the log would be script text."""
    words = script.split()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


@pytest.mark.e2e
@pytest.mark.parametrize("command", ["daphne", "uvicorn"])
async def test_production_log_of_a_stream(user: Any, command: str) -> None:
    """DEBUG off, LOG_FORMAT=json: a stream and a resume give JSON lines naming their connection, session and user,
    and the output holds neither the token (sent in ?token=) nor any of the script's text."""
    token = access_for(user)
    env = {"DJANGO_DEBUG": "0", "LOG_FORMAT": "json"}
    server = DaphneServer(env, server=command).start()
    try:
        async with open_socket(f"{server.ws_url}?token={token}") as first:
            started = await first.generate(topic=TOPIC, duration=15)
            frames = await first.recv_until({"stream.completed"})
        async with open_socket(f"{server.ws_url}?token={token}") as second:
            await second.resume(started["session_id"], last_seq=5)
            await second.recv_until({"stream.completed"})
    finally:
        server.sigterm()
        server.wait_exit(timeout=30)
    output = server.log_text()
    lines = json_lines(output)
    session, user_id = started["session_id"], user.pk
    producer, resumer = first.established["connection_id"], second.established["connection_id"]

    def said(connection: str, start: str) -> dict[str, Any]:
        """The one line about this connection whose message starts so."""
        (line,) = [
            line for line in lines if line.get("connection_id") == connection and line["message"].startswith(start)
        ]
        return line

    for connection, start in [(producer, "connection opened"), (producer, "connection closed"), (resumer, "resume")]:
        assert said(connection, start)["user_id"] == user_id
    for start in ("stream started", "stream ended"):
        assert said(producer, start)["session_id"] == session and said(producer, start)["user_id"] == user_id
    assert said(resumer, "resume")["session_id"] == session
    assert {line["process_id"] for line in lines if "process_id" in line} == {_process_id(lines)}
    about_ours = [line for line in lines if line.get("connection_id") in {producer, resumer}]
    assert all(line.get("user_id") == user_id for line in about_ours)

    assert token not in output and token.rsplit(".", 1)[1] not in output
    script = "".join(frame["text"] for frame in frames if frame["type"] == "stream.chunk")
    assert len(script.split()) == started["estimated_words"]
    assert TOPIC not in output
    assert not {run for run in script_runs(script) if run in output}, "script text in the log"


def _process_id(lines: list[dict[str, Any]]) -> str:
    (process,) = {line["process_id"] for line in lines if line["message"].startswith("stream started")}
    return str(process)
