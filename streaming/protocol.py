"""Protocol v1: every wire string, the client-frame parser and the server-frame builders (docs/protocol.md)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any

import orjson

PROTOCOL_VERSION = 1
SUBPROTOCOL = "creatornexus.v1"
BEARER_PREFIX = "bearer."


class ErrorCode(StrEnum):
    """Every error code the server speaks; the value is the wire string."""

    BAD_REQUEST = "bad_request"
    UNKNOWN_TYPE = "unknown_type"
    NOT_FOUND = "not_found"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    RATE_LIMITED = "rate_limited"
    TOO_MANY_STREAMS = "too_many_streams"
    INTERNAL_ERROR = "internal_error"
    RESUME_EXPIRED = "resume_expired"
    AI_UNAVAILABLE = "ai_unavailable"
    AI_RATE_LIMITED = "ai_rate_limited"
    AI_MISCONFIGURED = "ai_misconfigured"
    AI_TIMEOUT = "ai_timeout"
    AI_REFUSED = "ai_refused"
    WORKER_LOST = "worker_lost"
    SHUTTING_DOWN = "shutting_down"
    QUOTA_EXCEEDED = "quota_exceeded"  # the daily word budget is spent; the error frame carries `resets_at`


class CloseCode(IntEnum):
    """WebSocket close codes the server uses (docs/protocol.md); every one is sent with its CLOSE_REASONS text."""

    GOING_AWAY = 1001  # the server stops (embedded mode, after its streams ended): reconnect later
    SERVICE_RESTART = 1012  # the server drains for a restart: reconnect now (another process) and resume
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    IDLE_TIMEOUT = 4408
    TOO_SLOW = 4413  # more than WS_MAX_BUFFERED_BYTES of frames unread: reconnect and resume
    TOO_MANY_CONNECTIONS = 4429  # the user has WS_MAX_CONNECTIONS_PER_USER sockets open across the cluster


CLOSE_REASONS: dict[CloseCode, str] = {
    CloseCode.GOING_AWAY: "The server is shutting down.",
    CloseCode.SERVICE_RESTART: "The server is restarting; reconnect and resume.",
    CloseCode.UNAUTHORIZED: "Authentication failed or expired.",
    CloseCode.FORBIDDEN: "This account may not use the service.",
    CloseCode.IDLE_TIMEOUT: "Nothing received for too long.",
    CloseCode.TOO_SLOW: "Frames were not read fast enough; reconnect and resume.",
    CloseCode.TOO_MANY_CONNECTIONS: "Too many open connections for this user; close one first.",
}


class AuthCause(StrEnum):
    """Why an open socket's authentication ended (the value names it in logs); AUTH_CLOSES gives code and reason."""

    TOKEN_EXPIRED = "token_expired"  # noqa: S105 (a cause's name, no secret)
    TOKEN_INVALID = "token_invalid"  # noqa: S105 (a cause's name, no secret)
    AUTH_TOKEN_EXPIRED = "auth_token_expired"  # noqa: S105 (a cause's name, no secret)
    OTHER_USER = "other_user"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 (a cause's name, no secret)
    LOGGED_OUT = "logged_out"
    SIGNED_OUT_EVERYWHERE = "signed_out_everywhere"
    CLOSED_BY_OPERATOR = "closed_by_operator"
    DEACTIVATED = "deactivated"


# The close of a socket whose authentication ended: 4401 = sign in (or refresh) again, 4403 = stop.
# Reasons stay under 123 bytes (a close frame's limit) and say what happened, for logs and for the user.
AUTH_CLOSES: dict[AuthCause, tuple[CloseCode, str]] = {
    AuthCause.TOKEN_EXPIRED: (CloseCode.UNAUTHORIZED, "The access token expired; send a fresh one in an auth frame."),
    AuthCause.TOKEN_INVALID: (CloseCode.UNAUTHORIZED, "The auth frame's token is not a valid access token."),
    AuthCause.AUTH_TOKEN_EXPIRED: (CloseCode.UNAUTHORIZED, "The auth frame's token has already expired."),
    AuthCause.OTHER_USER: (CloseCode.UNAUTHORIZED, "The auth frame's token belongs to another user."),
    AuthCause.PASSWORD_CHANGED: (CloseCode.UNAUTHORIZED, "The password was changed; sign in again."),
    AuthCause.LOGGED_OUT: (CloseCode.UNAUTHORIZED, "This login was signed out."),
    AuthCause.SIGNED_OUT_EVERYWHERE: (CloseCode.UNAUTHORIZED, "Every login of this account was signed out."),
    AuthCause.CLOSED_BY_OPERATOR: (CloseCode.UNAUTHORIZED, "An operator signed this account out."),
    AuthCause.DEACTIVATED: (CloseCode.FORBIDDEN, "This account was deactivated."),
}


class ClientError(Exception):
    """A request the client got wrong; the connection stays open and gets one `error` frame."""

    def __init__(
        self, code: ErrorCode, message: str, request_id: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id
        self.details = details or {}  # extra fields of the error frame (quota_exceeded: resets_at)


def quota_exceeded(limit: int, resets_at: datetime) -> ClientError:
    """The user's daily word budget is spent: the error says when it resets (ISO 8601 UTC)."""
    return ClientError(
        ErrorCode.QUOTA_EXCEEDED,
        f"You have used today's budget of {limit} words; it resets at midnight UTC.",
        details={"resets_at": iso(resets_at)},
    )


class Platform(StrEnum):
    TIKTOK = "tiktok"
    YOUTUBE_SHORTS = "youtube_shorts"
    INSTAGRAM_REELS = "instagram_reels"
    YOUTUBE = "youtube"
    LINKEDIN = "linkedin"


# Longest script (seconds) each platform takes; a request above it is a bad_request.
PLATFORM_MAX_DURATION_S = {
    Platform.TIKTOK: 600,
    Platform.YOUTUBE_SHORTS: 180,
    Platform.INSTAGRAM_REELS: 180,
    Platform.YOUTUBE: 1200,
    Platform.LINKEDIN: 600,
}
MIN_DURATION_S = 5
TOPIC_MAX_CHARS = 500
STYLE_MAX_CHARS = 200
REQUEST_ID_MAX_CHARS = 100
# Far above any access token SimpleJWT signs (a few hundred characters), far below the frame limit.
TOKEN_MAX_CHARS = 4096
# The largest integer a JavaScript client holds exactly (Number.MAX_SAFE_INTEGER), far above any script's word
# count and within every store's index range (Redis LRANGE takes signed 64-bit indexes).
MAX_SEQ = 2**53 - 1
# Average speaking rate; the estimate (and so progress) is based on it.
SPOKEN_WORDS_PER_MINUTE = 150


def estimate_words(duration_s: int) -> int:
    """About 150 spoken words a minute of duration, never zero."""
    return max(1, round(duration_s * SPOKEN_WORDS_PER_MINUTE / 60))


# ---------------------------------------------------------------- client frames


@dataclass(frozen=True, slots=True)
class Ping:
    id: Any


@dataclass(frozen=True, slots=True)
class Pong:
    """A client's answer to a server ping; it only proves the client is alive."""

    id: Any


@dataclass(frozen=True, slots=True)
class ScriptRequest:
    """A generate frame, validated: what a provider is asked to write."""

    topic: str
    platform: Platform
    duration: int
    tone: str = ""
    audience: str = ""
    request_id: str | None = None
    # Multi-word stream.chunk frames for this request's watcher ("batch": true); not part of the script.
    batch: bool = False

    @property
    def estimated_words(self) -> int:
        return estimate_words(self.duration)


@dataclass(frozen=True, slots=True)
class Cancel:
    session_id: str
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Resume:
    session_id: str
    last_seq: int
    request_id: str | None = None
    batch: bool = False


@dataclass(frozen=True, slots=True)
class Auth:
    """A fresh access token for this socket (in-band refresh); repr hides it, so no log can show it."""

    token: str = field(repr=False)


ClientFrame = Ping | Pong | ScriptRequest | Cancel | Resume | Auth


def parse_client_frame(text: str | None, data: bytes | None, max_bytes: int) -> ClientFrame:
    """Turn one received WebSocket message into a typed frame, or raise ClientError."""
    if data is not None:
        if len(data) > max_bytes:
            raise ClientError(ErrorCode.PAYLOAD_TOO_LARGE, f"Frames are limited to {max_bytes} bytes.")
        raise ClientError(ErrorCode.BAD_REQUEST, "Binary frames are not supported; send JSON text.")
    raw = (text or "").encode("utf-8", "surrogatepass")
    if len(raw) > max_bytes:
        raise ClientError(ErrorCode.PAYLOAD_TOO_LARGE, f"Frames are limited to {max_bytes} bytes.")
    try:
        # orjson refuses nesting deeper than 1024 with a JSONDecodeError, so deep input cannot recurse us.
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ClientError(ErrorCode.BAD_REQUEST, "Frame is not valid JSON.") from None
    if not isinstance(frame, dict):
        raise ClientError(ErrorCode.BAD_REQUEST, "Frame must be a JSON object.")
    request_id = _request_id(frame)
    kind = frame.get("type")
    if not isinstance(kind, str) or not kind:
        raise ClientError(ErrorCode.BAD_REQUEST, "Frame needs a string 'type'.", request_id)
    parser = _PARSERS.get(kind)
    if parser is None:
        raise ClientError(ErrorCode.UNKNOWN_TYPE, f"Unknown frame type {kind[:40]!r}.", request_id)
    try:
        return parser(frame, request_id)
    except ClientError as exc:
        exc.request_id = request_id
        raise


def _request_id(frame: dict[str, Any]) -> str | None:
    value = frame.get("request_id")
    if isinstance(value, str) and 0 < len(value) <= REQUEST_ID_MAX_CHARS:
        return value
    return None


def _bad(message: str) -> ClientError:
    return ClientError(ErrorCode.BAD_REQUEST, message)


def _parse_ping(frame: dict[str, Any], request_id: str | None) -> Ping:
    ping_id = frame.get("id")
    if isinstance(ping_id, bool) or not isinstance(ping_id, str | int | None):
        raise _bad("'id' must be a string or an integer.")
    if isinstance(ping_id, str) and len(ping_id) > REQUEST_ID_MAX_CHARS:
        raise _bad(f"'id' is limited to {REQUEST_ID_MAX_CHARS} characters.")
    return Ping(id=ping_id)


def _text_field(frame: dict[str, Any], name: str, max_chars: int, *, required: bool) -> str:
    value = frame.get(name)
    if value is None:
        if required:
            raise _bad(f"'{name}' is required.")
        return ""
    if not isinstance(value, str):
        raise _bad(f"'{name}' must be a string.")
    value = value.strip()
    if required and not value:
        raise _bad(f"'{name}' must not be empty.")
    if len(value) > max_chars:
        raise _bad(f"'{name}' is limited to {max_chars} characters.")
    return value


def _parse_generate(frame: dict[str, Any], request_id: str | None) -> ScriptRequest:
    if "request_id" in frame and request_id is None:
        raise _bad(f"'request_id' must be a string of 1 to {REQUEST_ID_MAX_CHARS} characters.")
    topic = _text_field(frame, "topic", TOPIC_MAX_CHARS, required=True)
    raw_platform = frame.get("platform")
    try:
        platform = Platform(str(raw_platform))
    except ValueError:
        choices = ", ".join(p.value for p in Platform)
        raise _bad(f"'platform' must be one of: {choices}.") from None
    duration = frame.get("duration")
    if not isinstance(duration, int) or isinstance(duration, bool):
        raise _bad("'duration' must be an integer number of seconds.")
    longest = PLATFORM_MAX_DURATION_S[platform]
    if not MIN_DURATION_S <= duration <= longest:
        raise _bad(f"'duration' for {platform.value} must be {MIN_DURATION_S} to {longest} seconds.")
    return ScriptRequest(
        topic=topic,
        platform=platform,
        duration=duration,
        tone=_text_field(frame, "tone", STYLE_MAX_CHARS, required=False),
        audience=_text_field(frame, "audience", STYLE_MAX_CHARS, required=False),
        request_id=request_id,
        batch=_batch(frame),
    )


def _batch(frame: dict[str, Any]) -> bool:
    """The optional "batch" field: true asks for multi-word stream.chunk frames (docs/protocol.md)."""
    value = frame.get("batch", False)
    if not isinstance(value, bool):
        raise _bad("'batch' must be true or false.")
    return value


def _session_id(frame: dict[str, Any]) -> str:
    value = frame.get("session_id")
    if value is None:
        raise _bad("'session_id' is required.")
    if not isinstance(value, str):
        raise _bad("'session_id' must be a string.")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        # A malformed id names no session: answered exactly like an unknown one.
        raise ClientError(ErrorCode.NOT_FOUND, "No such session.") from None


def _parse_cancel(frame: dict[str, Any], request_id: str | None) -> Cancel:
    return Cancel(session_id=_session_id(frame), request_id=request_id)


def _parse_resume(frame: dict[str, Any], request_id: str | None) -> Resume:
    last_seq = frame.get("last_seq", 0)
    # orjson reads integers past 64 bits as floats: they are refused here with the same message.
    if not isinstance(last_seq, int) or isinstance(last_seq, bool) or not 0 <= last_seq <= MAX_SEQ:
        raise _bad(f"'last_seq' must be an integer from 0 to {MAX_SEQ}.")
    return Resume(session_id=_session_id(frame), last_seq=last_seq, request_id=request_id, batch=_batch(frame))


def _parse_auth(frame: dict[str, Any], _request_id: str | None) -> Auth:
    token = frame.get("token")
    if not isinstance(token, str) or not token.strip():
        raise _bad("'token' must be a non-empty string (an access token).")
    if len(token) > TOKEN_MAX_CHARS:
        raise _bad(f"'token' is limited to {TOKEN_MAX_CHARS} characters.")
    return Auth(token=token.strip())


_PARSERS: dict[str, Callable[[dict[str, Any], str | None], ClientFrame]] = {
    "ping": _parse_ping,
    "pong": lambda frame, _request_id: Pong(id=frame.get("id")),
    "generate": _parse_generate,
    "cancel": _parse_cancel,
    "resume": _parse_resume,
    "auth": _parse_auth,
}


# ---------------------------------------------------------------- server frames


def encode(frame: dict[str, Any]) -> str:
    return orjson.dumps(frame).decode()


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, as every time on the wire."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def now_iso() -> str:
    return iso(datetime.now(UTC))


def iso_utc(epoch_s: float) -> str:
    """An instant as ISO 8601 UTC with a Z, whole seconds (token expiries are whole seconds)."""
    return datetime.fromtimestamp(int(epoch_s), UTC).isoformat().replace("+00:00", "Z")


def connection_established(
    connection_id: str, user_id: int, username: str, *, token_expires_at: float
) -> dict[str, Any]:
    from django.conf import settings

    knobs = settings.STREAMING
    return {
        "type": "connection.established",
        "connection_id": connection_id,
        "user": {"id": user_id, "username": username},
        "heartbeat_interval": knobs["HEARTBEAT_INTERVAL_S"],
        "connection_timeout": knobs["CONNECTION_TIMEOUT_S"],
        "protocol": PROTOCOL_VERSION,
        "token_expires_at": iso_utc(token_expires_at),
    }


def auth_ok(token_expires_at: float) -> dict[str, Any]:
    """The socket now lives until the new token's expiry."""
    return {"type": "auth.ok", "token_expires_at": iso_utc(token_expires_at)}


def pong(ping_id: Any) -> dict[str, Any]:
    return {"type": "pong", "id": ping_id, "server_time": now_iso()}


def ping(ping_id: int) -> dict[str, Any]:
    return {"type": "ping", "id": ping_id}


def error(
    code: ErrorCode, message: str, request_id: str | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": code.value, "message": message, **(details or {})}
    if request_id is not None:
        frame["request_id"] = request_id
    return frame


def stream_started(
    request_id: str | None, session_id: str, estimated_words: int, provider: str, *, fallback: bool = False
) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "stream.started",
        "request_id": request_id,
        "session_id": session_id,
        "estimated_words": estimated_words,
        "provider": provider,
    }
    if fallback:
        frame["fallback"] = True
    return frame


def progress(seq: int, estimated_words: int) -> float:
    """Words so far against the estimate, held below 1.0 until the stream completes."""
    return round(min(seq / estimated_words, 0.99), 4)


@functools.lru_cache(maxsize=8192)
def _progress_text(seq: int, estimated_words: int) -> str:
    """progress() as a frame spells it. Cached: round() and the float's repr were 1.3 us of a 3.4 us frame, and
    a process sees few (seq, estimate) pairs (an estimate per duration, seqs up to it); ~1.6 MB at most."""
    return repr(progress(seq, estimated_words))


def stream_chunk(session_id: str, seq: int, text: str, estimated_words: int) -> str:
    """The hot path: one pre-encoded text frame per word, assembled without a dict."""
    return (
        f'{{"type":"stream.chunk","session_id":"{session_id}","seq":{seq},'
        f'"text":{orjson.dumps(text).decode()},"words":{seq},"progress":{_progress_text(seq, estimated_words)}}}'
    )


def stream_chunks(session_id: str, seq: int, count: int, text: str, estimated_words: int) -> str:
    """A multi-word chunk (clients that asked with "batch"): `count` consecutive words ending at `seq`."""
    return (
        f'{{"type":"stream.chunk","session_id":"{session_id}","seq":{seq},"count":{count},'
        f'"text":{orjson.dumps(text).decode()},"words":{seq},"progress":{_progress_text(seq, estimated_words)}}}'
    )


def stream_completed(
    session_id: str,
    script_id: int | None,
    seq: int,
    elapsed_ms: int,
    usage: dict[str, Any],
    *,
    fallback: bool = False,
) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "stream.completed",
        "session_id": session_id,
        "script_id": script_id,
        "seq": seq,
        "words": seq,
        "progress": 1.0,
        "elapsed_ms": elapsed_ms,
        "usage": usage,
    }
    if fallback:
        frame["fallback"] = True
    return frame


def stream_failed(session_id: str, seq: int, code: ErrorCode, message: str) -> dict[str, Any]:
    return {
        "type": "stream.failed",
        "session_id": session_id,
        "seq": seq,
        "error": {"code": code.value, "message": message},
    }


def stream_cancelled(session_id: str, seq: int) -> dict[str, Any]:
    return {"type": "stream.cancelled", "session_id": session_id, "seq": seq}


TERMINAL_TYPES = frozenset({"stream.completed", "stream.failed", "stream.cancelled"})
