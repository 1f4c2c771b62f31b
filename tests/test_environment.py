"""Every variable through one typed layer: bad values stop the start naming the variable; .env is read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from creatornexus import environment
from creatornexus.environment import Environment
from tests.servers import ROOT, DaphneServer


def load(monkeypatch: pytest.MonkeyPatch, **values: str) -> Environment:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return environment.load()


def test_types_lists_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    env = load(
        monkeypatch,
        WS_MAX_FRAME_BYTES="2048",
        DJANGO_DEBUG="yes",
        ALLOWED_HOSTS=" a.example, b.example ,",
        SHUTDOWN_GRACE_S="2.5",
        REDIS_URL="",  # empty means unset, as in .env.example
    )
    assert env.WS_MAX_FRAME_BYTES == 2048 and env.DJANGO_DEBUG is True and env.SHUTDOWN_GRACE_S == 2.5
    assert env.ALLOWED_HOSTS == ["a.example", "b.example"]
    assert env.REDIS_URL == "" and env.PROCESS_TTL_S == 10


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("WS_MAX_FRAME_BYTES", "abc", "WS_MAX_FRAME_BYTES='abc': Input should be a valid integer"),
        ("WS_MAX_FRAME_BYTES", "10", "WS_MAX_FRAME_BYTES='10': Input should be greater than or equal to 1024"),
        ("DJANGO_DEBUG", "maybe", "DJANGO_DEBUG='maybe': Input should be a valid boolean"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL='LOUD': Input should be 'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'"),
        ("AI_FALLBACK", "openai", "AI_FALLBACK='openai': Input should be '' or 'mock'"),
        ("REDIS_SENTINELS", "a:1,b", "REDIS_SENTINELS"),
        ("PROCESS_TTL_S", "0", "PROCESS_TTL_S='0': Input should be greater than or equal to 2"),
    ],
)
def test_bad_value_names_the_variable_and_what_it_accepts(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        load(monkeypatch, **{name: value})
    assert says in str(caught.value)


def test_dotenv_is_read_and_the_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("WS_MAX_STREAMS_PER_USER=7\nOPENAI_MODEL=from-dotenv\n# a comment\nREDIS_URL=\n")
    monkeypatch.setenv("OPENAI_MODEL", "from-environment")
    env = Environment(_env_file=dotenv)  # type: ignore[call-arg]
    assert env.WS_MAX_STREAMS_PER_USER == 7 and env.OPENAI_MODEL == "from-environment"


def test_misspelt_variable_is_reported_with_a_suggestion() -> None:
    found = environment.unknown_variables({"WS_MAX_FRAME_BYTE": "1", "DJANGO_SETTINGS_MODULE": "x", "HOME": "/"})
    assert found == ["WS_MAX_FRAME_BYTE (did you mean WS_MAX_FRAME_BYTES?)"]


def test_every_variable_is_in_env_example() -> None:
    listed = {
        line.split("=", 1)[0].strip()
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    assert set(Environment.model_fields) <= listed, set(Environment.model_fields) - listed


@pytest.mark.e2e
def test_server_with_a_bad_value_fails_at_once_naming_it() -> None:
    """`daphne` (the documented command) with WS_MAX_FRAME_BYTES=abc exits at start with the variable named."""
    server = DaphneServer({"WS_MAX_FRAME_BYTES": "abc"})
    with pytest.raises(RuntimeError, match="exited"):
        server.start()
    assert server.process is not None and server.process.returncode != 0
    assert "WS_MAX_FRAME_BYTES='abc': Input should be a valid integer" in server.log_text()


def test_manage_py_check_warns_about_a_misspelt_knob() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, "WS_MAX_STREAM_PER_USER": "9"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "WS_MAX_STREAM_PER_USER (did you mean WS_MAX_STREAMS_PER_USER?) is not a setting" in result.stderr
