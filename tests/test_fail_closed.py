"""Fail closed: DEBUG only when asked for, no key from the repository, HTTPS by default, no demo superuser."""

from __future__ import annotations

import os
import re
import secrets
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from creatornexus.settings import local_secret_key, proxy_ssl_header

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
SECRET_VARIABLES = ("DJANGO_SECRET_KEY", "JWT_SECRET")


def documented_production_env() -> dict[str, str]:
    """The `# production.env` block of docs/deploy.md, with fresh random keys where it shows `…`."""
    block = re.search(r"```sh\n# production\.env\n(.*?)```", DEPLOY_DOC.read_text(), re.DOTALL)
    assert block, "docs/deploy.md lost its `# production.env` block"
    env = dict(line.split("=", 1) for line in block.group(1).splitlines() if line.strip() and not line.startswith("#"))
    for name in SECRET_VARIABLES:
        assert env.get(name) == "…", f"docs/deploy.md should show {name} as a placeholder"
        env[name] = secrets.token_urlsafe(50)
    return env


def manage(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """manage.py in a child process with exactly this environment (nothing inherited from the test run)."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# ---------------------------------------------------------------- production environment


def test_check_deploy_passes_with_documented_production_env() -> None:
    """`manage.py check --deploy --fail-level WARNING` finds nothing with the environment docs/deploy.md gives."""
    result = manage(["check", "--deploy", "--fail-level", "WARNING"], documented_production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_documented_production_env_serves_https_only() -> None:
    """DEBUG off by default, HTTPS redirect, HSTS and secure cookies on, the proxy's header trusted."""
    probe = (
        "from django.conf import settings as s; print(s.DEBUG, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, "
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_PROXY_SSL_HEADER, s.REST_FRAMEWORK['NUM_PROXIES'])"
    )
    result = manage(["shell", "--verbosity", "0", "-c", probe], documented_production_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False True 31536000 True True ('HTTP_X_FORWARDED_PROTO', 'https') 1"


@pytest.mark.parametrize("missing", SECRET_VARIABLES)
def test_missing_secret_stops_the_start_naming_it(missing: str) -> None:
    """Without DJANGO_DEBUG, a missing key is an ImproperlyConfigured that names the variable."""
    env = documented_production_env()
    del env[missing]
    result = manage(["check"], env)
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {missing} is required" in result.stderr


def test_nothing_set_stops_the_start() -> None:
    """An empty environment does not fall back to DEBUG or to any key: it stops at the first missing key."""
    result = manage(["check"], {})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr


@pytest.mark.parametrize(
    ("jwt_secret", "message"),
    [("same", "JWT_SECRET must differ from DJANGO_SECRET_KEY"), ("short", "JWT_SECRET must be at least 32")],
)
def test_weak_jwt_secret_stops_the_start(jwt_secret: str, message: str) -> None:
    """The JWT key is apart from Django's and long enough for HS256, or the service does not start."""
    env = documented_production_env()
    env["JWT_SECRET"] = env["DJANGO_SECRET_KEY"] if jwt_secret == "same" else "x" * 31
    result = manage(["check"], env)
    assert result.returncode != 0
    assert message in result.stderr


# ---------------------------------------------------------------- the local key


def test_local_key_is_made_once_and_private(tmp_path: Path) -> None:
    """First start writes a long random key readable by its owner only; later starts read the same key."""
    path = tmp_path / ".secret_key"
    key = local_secret_key(path)
    assert len(key) >= 50
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert local_secret_key(path) == key
    assert local_secret_key(tmp_path / "other") != key
    assert sorted(p.name for p in tmp_path.iterdir()) == [".secret_key", "other"], "no draft file left behind"


def test_local_key_file_is_git_ignored() -> None:
    """The local key never reaches the repository."""
    result = subprocess.run(
        ["git", "check-ignore", "-q", ".secret_key"], cwd=ROOT, capture_output=True, check=False, timeout=10
    )
    assert result.returncode == 0


# ---------------------------------------------------------------- HTTPS behind a proxy


@pytest.fixture
def https_only(settings: Any) -> None:
    """Production's HTTPS settings (the test run itself serves plain HTTP)."""
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = proxy_ssl_header("X-Forwarded-Proto")
    settings.SECURE_HSTS_SECONDS = 31_536_000


@pytest.mark.usefixtures("https_only")
def test_plain_http_is_redirected_to_https(db: Any) -> None:
    """A request the proxy did not mark as HTTPS is redirected to the same URL over HTTPS."""
    response = Client().get("/?x=1", HTTP_HOST="localhost")
    assert response.status_code == 301
    assert response["Location"] == "https://localhost/?x=1"


@pytest.mark.usefixtures("https_only")
def test_https_through_the_proxy_is_served_with_hsts(db: Any) -> None:
    """X-Forwarded-Proto: https from the proxy -> the page, with Strict-Transport-Security."""
    response = Client().get("/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


@pytest.mark.usefixtures("https_only")
def test_health_probes_are_not_redirected(db: Any) -> None:
    """The balancer probes over plain HTTP: /healthz answers 200, not a redirect."""
    assert Client().get("/healthz").status_code == 200


def test_proxy_ssl_header_names() -> None:
    """A header name becomes Django's META key; empty trusts no header."""
    assert proxy_ssl_header("X-Forwarded-Proto") == ("HTTP_X_FORWARDED_PROTO", "https")
    assert proxy_ssl_header("") is None


# ---------------------------------------------------------------- the demo user


def test_demo_user_refused_with_debug_off(db: Any) -> None:
    """ensure_demo_user with DEBUG off: an error that points to createsuperuser, and no user."""
    with pytest.raises(CommandError, match="createsuperuser"):
        call_command("ensure_demo_user")
    assert not get_user_model().objects.filter(username="demo").exists()


def test_demo_user_command_exits_nonzero_in_production() -> None:
    """The command itself, as an operator would run it: non-zero exit, the reason on stderr."""
    result = manage(["ensure_demo_user"], documented_production_env())
    assert result.returncode != 0
    assert "runs only in local use (DJANGO_DEBUG=1)" in result.stderr
    assert "demo-password" not in result.stdout + result.stderr


def test_demo_user_made_in_local_use(db: Any, settings: Any) -> None:
    """With DEBUG on it makes the local superuser, as scripts/run expects."""
    settings.DEBUG = True
    call_command("ensure_demo_user")
    assert get_user_model().objects.get(username="demo").is_superuser
