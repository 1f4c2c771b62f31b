"""Settings: Django's settings from the environment, which creatornexus/environment.py alone reads and validates."""

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from creatornexus import environment

BASE_DIR = Path(__file__).resolve().parent.parent


# Every variable is read once, typed and validated, in creatornexus/environment.py (a bad one stops the start).
ENV = environment.load()

# Fail closed: DEBUG only when asked for (scripts/run asks, for local use).
DEBUG = ENV.DJANGO_DEBUG
# Local use only: a random key made on first start, git-ignored, readable by its owner alone.
LOCAL_SECRET_KEY_FILE = BASE_DIR / ".secret_key"
# HS256 needs a key of at least 256 bits; a shorter one can be guessed offline from any token.
MIN_JWT_SECRET_LENGTH = 32


def required_secret(name: str) -> str:
    """A secret from the environment; with DEBUG off a missing one stops the start, naming the variable."""
    value = str(getattr(ENV, name))
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

ALLOWED_HOSTS = ENV.ALLOWED_HOSTS
# Browser origins allowed to open sockets; empty means "whatever ALLOWED_HOSTS allows".
WS_ALLOWED_ORIGINS = ENV.WS_ALLOWED_ORIGINS
# Query-string tokens (?token=) end up in proxy logs; the service this replaces used them, so they stay on by default.
WS_ALLOW_QUERY_TOKEN = ENV.WS_ALLOW_QUERY_TOKEN


def _or(value: Any, default: Any) -> Any:
    """A variable that was set, else a default that depends on DEBUG."""
    return default if value is None else value


def proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """("HTTP_X_FORWARDED_PROTO", "https") for "X-Forwarded-Proto"; None (trust no header) for ""."""
    return (f"HTTP_{name.upper().replace('-', '_')}", "https") if name else None


# HTTPS. The defaults are production's (DEBUG off); local use (DEBUG on) serves plain HTTP.
SECURE_SSL_REDIRECT = _or(ENV.DJANGO_SECURE_SSL_REDIRECT, not DEBUG)
# Load balancers probe processes (and Prometheus scrapes each one) over plain HTTP, inside the network: a redirect
# would fail the probe or the scrape.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# Only the header a TLS-terminating proxy sets (and overwrites): a client could send it too.
SECURE_PROXY_SSL_HEADER = proxy_ssl_header(ENV.DJANGO_SECURE_PROXY_SSL_HEADER)
SECURE_HSTS_SECONDS = _or(ENV.DJANGO_SECURE_HSTS_SECONDS, 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _or(ENV.DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS, not DEBUG)
SECURE_HSTS_PRELOAD = _or(ENV.DJANGO_SECURE_HSTS_PRELOAD, not DEBUG)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _or(ENV.DJANGO_SECURE_COOKIES, not DEBUG)

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
        ENV.DATABASE_URL or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=ENV.DATABASE_CONN_MAX_AGE,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several threads of one process write (connections, sessions): wait for the lock instead of failing.
    # IMMEDIATE: a transaction takes the write lock when it begins. A deferred one that read first (the ends'
    # SELECT, then their UPDATE) and then needs to write while another process holds the write lock gets
    # "database is locked" at once, not after the timeout: SQLite refuses the upgrade rather than deadlock
    # (two processes on one SQLite file: bench.rolling, a developer's second runserver).
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=20, transaction_mode="IMMEDIATE")
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

REDIS_URL = ENV.REDIS_URL
# Sentinel: "host:port,host:port"; then REDIS_URL gives only the password and database, the master comes from them.
REDIS_SENTINELS = [(host, int(port)) for host, _, port in (item.rpartition(":") for item in ENV.REDIS_SENTINELS)]
REDIS_SENTINEL_MASTER = ENV.REDIS_SENTINEL_MASTER


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
    "WINDOW_S": ENV.AUTH_RATE_LIMIT_WINDOW_S,
    "PER_USERNAME": ENV.AUTH_RATE_LIMIT_PER_USERNAME,
    # Higher: people behind one NAT share an address, and every browser tab refreshes.
    "PER_ADDRESS": ENV.AUTH_RATE_LIMIT_PER_ADDRESS,
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.api.authentication.CheckedJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "creatornexus.openapi.AutoSchema",
    # Proxies in front whose X-Forwarded-For is trusted for the client address; 0 = the peer's address.
    "NUM_PROXIES": ENV.NUM_PROXIES,
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
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=ENV.JWT_ACCESS_TTL_S),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=ENV.JWT_REFRESH_TTL_S),
    "UPDATE_LAST_LOGIN": False,
    # Every refresh hands out the next refresh token and blacklists the one used: a stolen one works once at most.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    # Tokens carry a digest of the password hash they were issued under: a new password revokes them all.
    "CHECK_REVOKE_TOKEN": True,
}

OPENAI_API_KEY = ENV.OPENAI_API_KEY

# App knobs; code reads settings.STREAMING[...] at call time so tests can override them.
STREAMING: dict[str, Any] = {
    "MOCK_STREAM_DELAY_MS": ENV.MOCK_STREAM_DELAY_MS,
    "HEARTBEAT_INTERVAL_S": ENV.WS_HEARTBEAT_INTERVAL_S,
    "CONNECTION_TIMEOUT_S": ENV.WS_CONNECTION_TIMEOUT_S,
    # Daphne drops frames over 1 MiB without a close code; ours is far below that.
    "MAX_FRAME_BYTES": ENV.WS_MAX_FRAME_BYTES,
    # Outbound frames a socket may leave unread before it is closed with 4413 (Centrifugo's figure).
    "MAX_BUFFERED_BYTES": ENV.WS_MAX_BUFFERED_BYTES,
    # On SIGTERM/SIGINT generations run on this long before they end with shutting_down (under a 30 s kill timeout).
    "SHUTDOWN_GRACE_S": ENV.SHUTDOWN_GRACE_S,
    "MAX_STREAMS_PER_CONNECTION": ENV.WS_MAX_STREAMS_PER_CONNECTION,
    # Per user over the whole cluster (leases in the store); 0 = no limit.
    "MAX_STREAMS_PER_USER": ENV.WS_MAX_STREAMS_PER_USER,
    "MAX_CONNECTIONS_PER_USER": ENV.WS_MAX_CONNECTIONS_PER_USER,
    # A killed process's share of those limits lapses within this long; leases are renewed every third of it.
    "QUOTA_LEASE_TTL_S": ENV.QUOTA_LEASE_TTL_S,
    # Words a user may have generated per UTC day before `generate` is refused (quota_exceeded); 0 = no limit.
    "DAILY_WORD_LIMIT": ENV.USER_DAILY_WORD_LIMIT,
    # Token bucket per connection: a burst, then a steady rate of frames per second.
    "RATE_LIMIT_BURST": ENV.WS_RATE_LIMIT_BURST,
    "RATE_LIMIT_PER_S": ENV.WS_RATE_LIMIT_PER_S,
    # A generation never runs longer than this, socket or not.
    "STREAM_DEADLINE_S": ENV.STREAM_DEADLINE_S,
    "STREAM_RETENTION_S": ENV.STREAM_RETENTION_S,
    # Words are written to the store and watchers woken at most once per tick.
    "FLUSH_INTERVAL_MS": ENV.STREAM_FLUSH_INTERVAL_MS,
    # A process that has not refreshed its heartbeat for this long is dead (kill -9): its streams fail.
    "PROCESS_TTL_S": ENV.PROCESS_TTL_S,
    "OPENAI_BASE_URL": ENV.OPENAI_BASE_URL,
    "OPENAI_MODEL": ENV.OPENAI_MODEL,
    "OPENAI_TIMEOUT_S": ENV.OPENAI_TIMEOUT_S,
    "OPENAI_MAX_RETRIES": ENV.OPENAI_MAX_RETRIES,
    "OPENAI_STREAM_IDLE_TIMEOUT_S": ENV.OPENAI_STREAM_IDLE_TIMEOUT_S,
    "OPENAI_MAX_RETRY_AFTER_S": ENV.OPENAI_MAX_RETRY_AFTER_S,
    # How the OpenAI provider speaks HTTP: "asyncio" (streaming/providers/http1.py; the provider then needs
    # ~2x less CPU per streamed word) or "httpx" (the SDK's own; used anyway when HTTP(S)_PROXY is set). docs/ai.md.
    "OPENAI_HTTP_TRANSPORT": ENV.OPENAI_HTTP_TRANSPORT,
    "AI_FALLBACK": ENV.AI_FALLBACK,
}

# A scrape token for /metrics (Authorization: Bearer <token>), for Prometheus; staff access tokens work too.
METRICS_TOKEN = ENV.METRICS_TOKEN
# A bearer secret that grants reading every process's counters: long enough not to be guessed.
MIN_METRICS_TOKEN_LENGTH = 32
if METRICS_TOKEN and len(METRICS_TOKEN) < MIN_METRICS_TOKEN_LENGTH:
    raise ImproperlyConfigured(f"METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_LENGTH} characters long")

# One JSON object per line for log collectors (production), or plain lines for a person (local use).
LOG_FORMAT = ENV.LOG_FORMAT or ("plain" if DEBUG else "json")

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
    "root": {"handlers": ["console"], "level": ENV.LOG_LEVEL},
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
