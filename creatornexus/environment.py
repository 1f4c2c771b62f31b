"""Every environment variable the service reads, typed and validated in one place (pydantic-settings).

Why pydantic-settings: pydantic is already here (the openai SDK is built on it), a declared class is the one list
of every knob with its type, bounds and default, and its errors name the variable and what it accepts. A bad value
stops the start at once (`ImproperlyConfigured`) instead of failing at the first request that reads it. For local
use a `.env` file beside manage.py is read too; the real environment wins over it.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from django.core.exceptions import ImproperlyConfigured
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

BASE_DIR = Path(__file__).resolve().parent.parent
ENV_FILE = BASE_DIR / ".env"

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
CommaList = Annotated[list[str], NoDecode]

# Prefixes of this service's variables: one in the environment that is not declared below is probably a typo.
OWN_PREFIXES = (
    *("DJANGO_", "WS_", "STREAM_", "OPENAI_", "JWT_", "REDIS_", "AUTH_RATE_", "MOCK_", "SHUTDOWN_"),
    *("QUOTA_", "USER_DAILY_", "LOG_", "METRICS_"),
)
# Variables with those prefixes that belong to someone else (Django, the test run).
FOREIGN = frozenset({"DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_COLORS", "REDIS_TEST_URL"})


class Environment(BaseSettings):
    """The variables (see .env.example for a line on each); names are the variables' own, case-sensitive."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILE, env_file_encoding="utf-8", case_sensitive=True, env_ignore_empty=True, extra="ignore"
    )

    # Django and HTTPS (None: the default follows DEBUG, see settings.py)
    DJANGO_DEBUG: bool = False
    DJANGO_SECRET_KEY: str = ""
    JWT_SECRET: str = ""
    ALLOWED_HOSTS: CommaList = ["localhost", "127.0.0.1", "[::1]"]
    DJANGO_SECURE_SSL_REDIRECT: bool | None = None
    DJANGO_SECURE_PROXY_SSL_HEADER: str = ""
    DJANGO_SECURE_HSTS_SECONDS: NonNegativeInt | None = None
    DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS: bool | None = None
    DJANGO_SECURE_HSTS_PRELOAD: bool | None = None
    DJANGO_SECURE_COOKIES: bool | None = None
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    LOG_FORMAT: Literal["", "json", "plain"] = ""  # "": json unless DEBUG
    METRICS_TOKEN: str = ""

    # Storage
    DATABASE_URL: str = ""
    DATABASE_CONN_MAX_AGE: NonNegativeInt = 0
    REDIS_URL: str = ""
    REDIS_SENTINELS: CommaList = []
    REDIS_SENTINEL_MASTER: str = "mymaster"

    # Sign-in
    JWT_ACCESS_TTL_S: PositiveInt = 900
    JWT_REFRESH_TTL_S: PositiveInt = 86400
    AUTH_RATE_LIMIT_WINDOW_S: PositiveInt = 60
    AUTH_RATE_LIMIT_PER_USERNAME: NonNegativeInt = 10
    AUTH_RATE_LIMIT_PER_ADDRESS: NonNegativeInt = 60
    NUM_PROXIES: NonNegativeInt = 0

    # The socket
    WS_ALLOWED_ORIGINS: CommaList = []
    WS_ALLOW_QUERY_TOKEN: bool = True
    WS_HEARTBEAT_INTERVAL_S: PositiveFloat = 30
    WS_CONNECTION_TIMEOUT_S: PositiveFloat = 60
    WS_MAX_FRAME_BYTES: Annotated[int, Field(ge=1024, le=1024 * 1024)] = 64 * 1024
    WS_MAX_BUFFERED_BYTES: Annotated[int, Field(ge=64 * 1024)] = 1024 * 1024
    WS_MAX_STREAMS_PER_CONNECTION: PositiveInt = 3
    WS_MAX_STREAMS_PER_USER: NonNegativeInt = 5  # 0 = no limit
    WS_MAX_CONNECTIONS_PER_USER: NonNegativeInt = 20  # 0 = no limit
    QUOTA_LEASE_TTL_S: Annotated[float, Field(ge=1)] = 6
    USER_DAILY_WORD_LIMIT: NonNegativeInt = 0  # 0 = no limit
    WS_RATE_LIMIT_BURST: PositiveInt = 60
    WS_RATE_LIMIT_PER_S: PositiveFloat = 20

    # Streams
    STREAM_DEADLINE_S: PositiveFloat = 300
    STREAM_RETENTION_S: PositiveInt = 900
    STREAM_FLUSH_INTERVAL_MS: Annotated[int, Field(ge=1, le=1000)] = 50
    PROCESS_TTL_S: Annotated[int, Field(ge=2)] = 10
    SHUTDOWN_GRACE_S: Annotated[float, Field(ge=0)] = 25

    # The AI provider
    OPENAI_API_KEY: str = ""
    OPENAI_BASE_URL: str = ""
    OPENAI_MODEL: str = "gpt-4o-mini"
    OPENAI_TIMEOUT_S: PositiveFloat = 20
    OPENAI_MAX_RETRIES: NonNegativeInt = 1
    OPENAI_STREAM_IDLE_TIMEOUT_S: PositiveFloat = 20
    OPENAI_MAX_RETRY_AFTER_S: Annotated[float, Field(ge=0)] = 3
    OPENAI_HTTP_TRANSPORT: Literal["asyncio", "httpx"] = "asyncio"
    AI_FALLBACK: Literal["", "mock"] = ""
    MOCK_STREAM_DELAY_MS: NonNegativeInt = 25

    @field_validator("ALLOWED_HOSTS", "REDIS_SENTINELS", "WS_ALLOWED_ORIGINS", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        """ "a, b,c" -> ["a", "b", "c"] (the form every list here takes in the environment)."""
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("LOG_FORMAT", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("LOG_LEVEL", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("REDIS_SENTINELS")
    @classmethod
    def _host_ports(cls, value: list[str]) -> list[str]:
        for item in value:
            host, _, port = item.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port items separated by commas, got {item!r}")
        return value


def describe(error: ValidationError) -> str:
    """One line per bad variable: its name, the value it had, and what it accepts."""
    lines = []
    for problem in error.errors():
        name = ".".join(str(part) for part in problem["loc"])
        given = problem.get("input")
        shown = f"={given!r}" if isinstance(given, str | int | float) else ""
        lines.append(f"{name}{shown}: {problem['msg']}")
    return "Invalid environment (see .env.example):\n  " + "\n  ".join(lines)


def load() -> Environment:
    """The environment, validated; a bad value stops the start with a message that names the variable."""
    try:
        return Environment()
    except ValidationError as exc:
        raise ImproperlyConfigured(describe(exc)) from None


def unknown_variables(environ: dict[str, str] | None = None) -> list[str]:
    """Variables that look like ours but are not declared: '<NAME>' or '<NAME> (did you mean <KNOWN>?)'."""
    known = set(Environment.model_fields)
    found = []
    for name in sorted(os.environ if environ is None else environ):
        if name in known or name in FOREIGN or not name.startswith(OWN_PREFIXES):
            continue
        close = difflib.get_close_matches(name, known, n=1)
        found.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return found


def check_unknown_variables(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """System check (manage.py check, every server start): a misspelt knob is reported, not silently ignored."""
    from django.core.checks import Warning as CheckWarning

    return [
        CheckWarning(f"{name} is not a setting of this service; it has no effect.", id="creatornexus.W001")
        for name in unknown_variables()
    ]
