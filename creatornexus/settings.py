"""Settings: the one place that reads the environment (see .env.example for every variable)."""

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


# Fail closed: DEBUG only when asked for (scripts/run asks, for local use).
DEBUG = env_bool("DJANGO_DEBUG", False)
# Local use only: a random key made on first start, git-ignored, readable by its owner alone.
LOCAL_SECRET_KEY_FILE = BASE_DIR / ".secret_key"
# HS256 needs a key of at least 256 bits; a shorter one can be guessed offline from any token.
MIN_JWT_SECRET_LENGTH = 32


def required_secret(name: str) -> str:
    """A secret from the environment; with DEBUG off a missing one stops the start, naming the variable."""
    value = env_str(name)
    if not value and not DEBUG:
        raise ImproperlyConfigured(
            f"{name} is required (DJANGO_DEBUG is off unless set to 1): set it to a long random string, e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    return value


def local_secret_key(path: Path) -> str:
    """The key of local use: made once with `secrets`, then read back, so restarts keep sessions and tokens."""
    if path.exists():
        return path.read_text().strip()
    draft = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_urlsafe(50))
    try:
        os.link(draft, path)  # atomic and refuses to overwrite: two first starts agree on one key
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text().strip()


def jwt_signing_key(secret_key: str) -> str:
    """JWT_SECRET signs tokens; production needs one of its own, so either key can be rotated alone."""
    key = required_secret("JWT_SECRET")
    if DEBUG:
        return key or secret_key
    if key == secret_key:
        raise ImproperlyConfigured("JWT_SECRET must differ from DJANGO_SECRET_KEY")
    if len(key) < MIN_JWT_SECRET_LENGTH:
        raise ImproperlyConfigured(f"JWT_SECRET must be at least {MIN_JWT_SECRET_LENGTH} characters long")
    return key


SECRET_KEY = required_secret("DJANGO_SECRET_KEY") or local_secret_key(LOCAL_SECRET_KEY_FILE)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
# Browser origins allowed to open sockets; empty means "whatever ALLOWED_HOSTS allows".
WS_ALLOWED_ORIGINS = env_list("WS_ALLOWED_ORIGINS")
# Query-string tokens (?token=) end up in proxy logs; the service this replaces used them, so they stay on by default.
WS_ALLOW_QUERY_TOKEN = env_bool("WS_ALLOW_QUERY_TOKEN", True)


def proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """("HTTP_X_FORWARDED_PROTO", "https") for "X-Forwarded-Proto"; None (trust no header) for ""."""
    return (f"HTTP_{name.upper().replace('-', '_')}", "https") if name else None


# HTTPS. The defaults are production's (DEBUG off); local use (DEBUG on) serves plain HTTP.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
# Load balancers probe processes (and Prometheus scrapes each one) over plain HTTP, inside the network: a redirect
# would fail the probe or the scrape.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# Only the header a TLS-terminating proxy sets (and overwrites): a client could send it too.
SECURE_PROXY_SSL_HEADER = proxy_ssl_header(env_str("DJANGO_SECURE_PROXY_SSL_HEADER"))
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)

INSTALLED_APPS = [
    "daphne",  # first, so `manage.py runserver` serves ASGI (WebSockets included)
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "servestatic.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from here: the docs page works offline
    "rest_framework_simplejwt.token_blacklist",  # rotated and logged-out refresh tokens are refused
    "channels",
    "accounts",
    "streaming",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "creatornexus.urls"
ASGI_APPLICATION = "creatornexus.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several threads of one process write (connections, sessions): wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test-db.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve static files from the finders when nothing was collected (runserver, tests, a fresh clone).
SERVESTATIC_USE_FINDERS = True
SERVESTATIC_AUTOREFRESH = DEBUG

REDIS_URL = env_str("REDIS_URL")
# Sentinel: "host:port,host:port"; then REDIS_URL gives only the password and database, the master comes from them.
REDIS_SENTINELS = [
    (host, int(port)) for host, _, port in (item.rpartition(":") for item in env_list("REDIS_SENTINELS"))
]
REDIS_SENTINEL_MASTER = env_str("REDIS_SENTINEL_MASTER", "mymaster")


def redis_channel_layers(url: str, sentinels: list[tuple[str, int]], master: str) -> dict[str, Any]:
    """channels-redis for REDIS_URL, or for the Sentinel master with the URL's password and db."""
    # redis-py 8 defaults socket_timeout to 5 s, which kills the layer's idle blocking readers.
    host: dict[str, Any] = {"address": url, "socket_timeout": None, "socket_connect_timeout": 5}
    if sentinels:
        parsed = urlparse(url)
        host = {
            "sentinels": sentinels,
            "master_name": master,
            "db": int(parsed.path.strip("/") or 0),
            "password": parsed.password,
            "socket_timeout": None,
            "socket_connect_timeout": 5,
        }
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [host],
                # The default (100) drops messages silently under load; the layer only carries wake-ups.
                "capacity": 1500,
                "expiry": 30,
                "group_expiry": 3600,
            },
        }
    }


if REDIS_URL:
    CHANNEL_LAYERS = redis_channel_layers(REDIS_URL, REDIS_SENTINELS, REDIS_SENTINEL_MASTER)
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def redis_caches(url: str, sentinels: list[tuple[str, int]], master: str) -> dict[str, Any]:
    """Django's RedisCache on REDIS_URL (or the Sentinels' master): counters that hold across processes."""
    # A Redis that does not answer fails a request in seconds instead of holding it.
    options: dict[str, Any] = {"socket_connect_timeout": 2, "socket_timeout": 2}
    if sentinels:
        options |= {"pool_class": "creatornexus.cache.SentinelPool", "sentinels": sentinels, "master_name": master}
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "cn:cache",
            "OPTIONS": options,
        }
    }


if REDIS_URL:
    CACHES = redis_caches(REDIS_URL, REDIS_SENTINELS, REDIS_SENTINEL_MASTER)
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Attempts at the token endpoints (login, refresh), counted in the cache per window; 0 switches a limit off.
AUTH_RATE_LIMITS = {
    "WINDOW_S": env_int("AUTH_RATE_LIMIT_WINDOW_S", 60),
    "PER_USERNAME": env_int("AUTH_RATE_LIMIT_PER_USERNAME", 10),
    # Higher: people behind one NAT share an address, and every browser tab refreshes.
    "PER_ADDRESS": env_int("AUTH_RATE_LIMIT_PER_ADDRESS", 60),
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.api.authentication.CheckedJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "creatornexus.openapi.AutoSchema",
    # Proxies in front whose X-Forwarded-For is trusted for the client address; 0 = the peer's address.
    "NUM_PROXIES": env_int("NUM_PROXIES", 0),
}

# The OpenAPI schema at /api/schema/ (docs page: /api/docs/); the socket protocol is docs/asyncapi.yaml.
SPECTACULAR_SETTINGS = {
    "TITLE": "CreatorNexus Streaming API",
    "DESCRIPTION": "Saved scripts, tokens, operator stats and health. Scripts are written over the WebSocket "
    "at /ws/stream/ (docs/protocol.md, docs/asyncapi.yaml).",
    "VERSION": "1",
    # 3.1: every schema is plain JSON Schema (2020-12), so tests check real responses with jsonschema.
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True},
    # Requests and responses as separate components: a response is checked against what it really holds.
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ScriptStatus": "streaming.models.StreamSession.Status",
        "ProviderName": ["mock", "openai"],
        "ChannelLayer": ["redis", "in-memory"],
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "creatornexus.openapi.nullable_as_type_list",
    ],
}

SIMPLE_JWT = {
    "SIGNING_KEY": jwt_signing_key(SECRET_KEY),
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env_int("JWT_ACCESS_TTL_S", 900)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env_int("JWT_REFRESH_TTL_S", 86400)),
    "UPDATE_LAST_LOGIN": False,
    # Every refresh hands out the next refresh token and blacklists the one used: a stolen one works once at most.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    # Tokens carry a digest of the password hash they were issued under: a new password revokes them all.
    "CHECK_REVOKE_TOKEN": True,
}

OPENAI_API_KEY = env_str("OPENAI_API_KEY")

# App knobs; code reads settings.STREAMING[...] at call time so tests can override them.
STREAMING: dict[str, Any] = {
    "MOCK_STREAM_DELAY_MS": env_int("MOCK_STREAM_DELAY_MS", 25),
    "HEARTBEAT_INTERVAL_S": env_float("WS_HEARTBEAT_INTERVAL_S", 30),
    "CONNECTION_TIMEOUT_S": env_float("WS_CONNECTION_TIMEOUT_S", 60),
    # Daphne drops frames over 1 MiB without a close code; ours is far below that.
    "MAX_FRAME_BYTES": env_int("WS_MAX_FRAME_BYTES", 64 * 1024),
    # Outbound frames a socket may leave unread before it is closed with 4413 (Centrifugo's figure).
    "MAX_BUFFERED_BYTES": env_int("WS_MAX_BUFFERED_BYTES", 1024 * 1024),
    # On SIGTERM/SIGINT generations run on this long before they end with shutting_down (under a 30 s kill timeout).
    "SHUTDOWN_GRACE_S": env_float("SHUTDOWN_GRACE_S", 25),
    "MAX_STREAMS_PER_CONNECTION": env_int("WS_MAX_STREAMS_PER_CONNECTION", 3),
    # Per user over the whole cluster (leases in the store); 0 = no limit.
    "MAX_STREAMS_PER_USER": env_int("WS_MAX_STREAMS_PER_USER", 5),
    "MAX_CONNECTIONS_PER_USER": env_int("WS_MAX_CONNECTIONS_PER_USER", 20),
    # A killed process's share of those limits lapses within this long; leases are renewed every third of it.
    "QUOTA_LEASE_TTL_S": env_float("QUOTA_LEASE_TTL_S", 6),
    # Words a user may have generated per UTC day before `generate` is refused (quota_exceeded); 0 = no limit.
    "DAILY_WORD_LIMIT": env_int("USER_DAILY_WORD_LIMIT", 0),
    # Token bucket per connection: a burst, then a steady rate of frames per second.
    "RATE_LIMIT_BURST": env_int("WS_RATE_LIMIT_BURST", 60),
    "RATE_LIMIT_PER_S": env_float("WS_RATE_LIMIT_PER_S", 20),
    # A generation never runs longer than this, socket or not.
    "STREAM_DEADLINE_S": env_float("STREAM_DEADLINE_S", 300),
    "STREAM_RETENTION_S": env_int("STREAM_RETENTION_S", 900),
    # Words are written to the store and watchers woken at most once per tick.
    "FLUSH_INTERVAL_MS": env_int("STREAM_FLUSH_INTERVAL_MS", 50),
    # A process that has not refreshed its heartbeat for this long is dead (kill -9): its streams fail.
    "PROCESS_TTL_S": env_int("PROCESS_TTL_S", 10),
    "OPENAI_BASE_URL": env_str("OPENAI_BASE_URL"),
    "OPENAI_MODEL": env_str("OPENAI_MODEL", "gpt-4o-mini"),
    "OPENAI_TIMEOUT_S": env_float("OPENAI_TIMEOUT_S", 20),
    "OPENAI_MAX_RETRIES": env_int("OPENAI_MAX_RETRIES", 1),
    "OPENAI_STREAM_IDLE_TIMEOUT_S": env_float("OPENAI_STREAM_IDLE_TIMEOUT_S", 20),
    "OPENAI_MAX_RETRY_AFTER_S": env_float("OPENAI_MAX_RETRY_AFTER_S", 3),
    # How the OpenAI provider speaks HTTP: "asyncio" (streaming/providers/http1.py; the provider then needs
    # ~2x less CPU per streamed word) or "httpx" (the SDK's own; used anyway when HTTP(S)_PROXY is set). docs/ai.md.
    "OPENAI_HTTP_TRANSPORT": env_str("OPENAI_HTTP_TRANSPORT", "asyncio"),
    "AI_FALLBACK": env_str("AI_FALLBACK"),
}
if STREAMING["OPENAI_HTTP_TRANSPORT"] not in {"asyncio", "httpx"}:
    raise ImproperlyConfigured("OPENAI_HTTP_TRANSPORT must be 'asyncio' or 'httpx'")

# A scrape token for /metrics (Authorization: Bearer <token>), for Prometheus; staff access tokens work too.
METRICS_TOKEN = env_str("METRICS_TOKEN")
# A bearer secret that grants reading every process's counters: long enough not to be guessed.
MIN_METRICS_TOKEN_LENGTH = 32
if METRICS_TOKEN and len(METRICS_TOKEN) < MIN_METRICS_TOKEN_LENGTH:
    raise ImproperlyConfigured(f"METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_LENGTH} characters long")

# One JSON object per line for log collectors (production), or plain lines for a person (local use).
LOG_FORMATS = ("json", "plain")
LOG_FORMAT = (env_str("LOG_FORMAT") or ("plain" if DEBUG else "json")).lower()
if LOG_FORMAT not in LOG_FORMATS:
    raise ImproperlyConfigured(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {LOG_FORMAT!r}")

LOGGING_CONFIG = "creatornexus.logformat.configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        # Tokens travel in ?token= and servers log request paths: every record is redacted before it is written.
        "redact_tokens": {"()": "creatornexus.redact.RedactTokens"},
        # The connection, session and user a line is about (creatornexus/logcontext.py).
        "log_context": {"()": "creatornexus.logcontext.StampContext"},
    },
    "formatters": {
        "json": {"()": "creatornexus.logformat.JsonFormatter"},
        "plain": {"()": "creatornexus.logformat.PlainFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            # Redaction first: the formatter only ever sees redacted records.
            "filters": ["redact_tokens", "log_context"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Loggers that bring their own handlers (Django's defaults; uvicorn's, set up before it imports the app)
        # write through the redacting handler instead. Not "uvicorn" itself: naming it would reset its child
        # uvicorn.access and undo --no-access-log (an access log, when on, keeps uvicorn's handler).
        "django": {"handlers": [], "propagate": True},
        "django.server": {"handlers": [], "propagate": True},
        "uvicorn.error": {"handlers": ["console"], "propagate": False},
        "uvicorn.asgi": {"handlers": ["console"], "propagate": False},
        # One line per request under runserver: its access log at INFO, and django.request (which repeats every
        # 4xx as a warning) only for server errors, whose tracebacks it carries.
        "django.channels.server": {"level": "INFO"},
        "django.request": {"level": "ERROR"},
    },
}
