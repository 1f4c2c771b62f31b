"""Protocol v1 tables: what parse_client_frame accepts, what it refuses with which code, and the frame builders."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from streaming import protocol
from streaming.protocol import (
    AUTH_CLOSES,
    CLOSE_REASONS,
    Auth,
    AuthCause,
    Cancel,
    ClientError,
    CloseCode,
    ErrorCode,
    Ping,
    Platform,
    Pong,
    Resume,
    ScriptRequest,
)

LIMIT = 64 * 1024
SESSION = str(uuid.uuid4())


def parse(frame: Any) -> protocol.ClientFrame:
    return protocol.parse_client_frame(orjson.dumps(frame).decode(), None, LIMIT)


def generate(**fields: Any) -> dict[str, Any]:
    return {"type": "generate", "request_id": "r1", "topic": "coffee", "platform": "tiktok", "duration": 60, **fields}


VALID = [
    ({"type": "ping", "id": 7}, Ping(id=7)),
    ({"type": "ping", "id": "abc"}, Ping(id="abc")),
    ({"type": "ping"}, Ping(id=None)),
    ({"type": "ping", "id": 1, "extra": [1, 2]}, Ping(id=1)),
    ({"type": "pong", "id": 3}, Pong(id=3)),
    (generate(), ScriptRequest("coffee", Platform.TIKTOK, 60, request_id="r1")),
    (
        generate(topic="  pour-over  ", tone="calm", audience="students"),
        ScriptRequest("pour-over", Platform.TIKTOK, 60, tone="calm", audience="students", request_id="r1"),
    ),
    (generate(tone=None, audience=None), ScriptRequest("coffee", Platform.TIKTOK, 60, request_id="r1")),
    ({k: v for k, v in generate().items() if k != "request_id"}, ScriptRequest("coffee", Platform.TIKTOK, 60)),
    (generate(topic="t" * 500), ScriptRequest("t" * 500, Platform.TIKTOK, 60, request_id="r1")),
    (generate(tone="x" * 200), ScriptRequest("coffee", Platform.TIKTOK, 60, tone="x" * 200, request_id="r1")),
    (generate(duration=5), ScriptRequest("coffee", Platform.TIKTOK, 5, request_id="r1")),
    (generate(platform="tiktok", duration=600), ScriptRequest("coffee", Platform.TIKTOK, 600, request_id="r1")),
    (generate(platform="linkedin", duration=600), ScriptRequest("coffee", Platform.LINKEDIN, 600, request_id="r1")),
    (generate(platform="youtube", duration=1200), ScriptRequest("coffee", Platform.YOUTUBE, 1200, request_id="r1")),
    (
        generate(platform="youtube_shorts", duration=180),
        ScriptRequest("coffee", Platform.YOUTUBE_SHORTS, 180, request_id="r1"),
    ),
    (
        generate(platform="instagram_reels", duration=180),
        ScriptRequest("coffee", Platform.INSTAGRAM_REELS, 180, request_id="r1"),
    ),
    ({"type": "cancel", "session_id": SESSION}, Cancel(SESSION)),
    ({"type": "cancel", "session_id": SESSION.upper(), "request_id": "c1"}, Cancel(SESSION, request_id="c1")),
    ({"type": "resume", "session_id": SESSION, "last_seq": 4}, Resume(SESSION, 4)),
    ({"type": "resume", "session_id": SESSION}, Resume(SESSION, 0)),
    ({"type": "resume", "session_id": SESSION, "last_seq": protocol.MAX_SEQ}, Resume(SESSION, protocol.MAX_SEQ)),
    ({"type": "auth", "token": "a.b.c"}, Auth("a.b.c")),
    ({"type": "auth", "token": "  a.b.c\n", "request_id": "a1"}, Auth("a.b.c")),
    ({"type": "auth", "token": "t" * protocol.TOKEN_MAX_CHARS}, Auth("t" * protocol.TOKEN_MAX_CHARS)),
]


@pytest.mark.parametrize(("frame", "expected"), VALID)
def test_valid_frames_parse(frame: dict[str, Any], expected: protocol.ClientFrame) -> None:
    """A well-formed frame becomes its typed, normalised value."""
    assert parse(frame) == expected


INVALID_TEXT = [
    ("", ErrorCode.BAD_REQUEST),
    ("not json", ErrorCode.BAD_REQUEST),
    ('{"type": "ping"', ErrorCode.BAD_REQUEST),
    ("[" * 50_000, ErrorCode.BAD_REQUEST),
    ('{"a":' * 5_000 + "1" + "}" * 5_000, ErrorCode.BAD_REQUEST),
    ("[1, 2]", ErrorCode.BAD_REQUEST),
    ('"ping"', ErrorCode.BAD_REQUEST),
    ("null", ErrorCode.BAD_REQUEST),
    ("42", ErrorCode.BAD_REQUEST),
    ("{}", ErrorCode.BAD_REQUEST),
    ('{"type": 1}', ErrorCode.BAD_REQUEST),
    ('{"type": ""}', ErrorCode.BAD_REQUEST),
    ('{"type": null}', ErrorCode.BAD_REQUEST),
    ('{"type": "explode"}', ErrorCode.UNKNOWN_TYPE),
    ('{"type": "PING"}', ErrorCode.UNKNOWN_TYPE),
    ("x" * (LIMIT + 1), ErrorCode.PAYLOAD_TOO_LARGE),
    ("[" * 100_000, ErrorCode.PAYLOAD_TOO_LARGE),
    ("é" * (LIMIT // 2 + 1), ErrorCode.PAYLOAD_TOO_LARGE),
]


@pytest.mark.parametrize(("text", "code"), INVALID_TEXT, ids=lambda v: repr(v)[:30])
def test_invalid_text_refused(text: str, code: ErrorCode) -> None:
    """Text that is not a usable frame raises ClientError with its code."""
    with pytest.raises(ClientError) as caught:
        protocol.parse_client_frame(text, None, LIMIT)
    assert caught.value.code is code


INVALID_FIELDS = [
    {"type": "ping", "id": True},
    {"type": "ping", "id": 1.5},
    {"type": "ping", "id": [1]},
    {"type": "ping", "id": "x" * 101},
    generate(topic=None),
    generate(topic=""),
    generate(topic="   "),
    generate(topic=5),
    generate(topic="t" * 501),
    generate(platform=None),
    generate(platform="myspace"),
    generate(platform="TikTok"),
    generate(platform=1),
    generate(duration=None),
    generate(duration="60"),
    generate(duration=60.0),
    generate(duration=True),
    generate(duration=4),
    generate(duration=0),
    generate(duration=-60),
    generate(platform="tiktok", duration=601),
    generate(platform="linkedin", duration=601),
    generate(platform="youtube_shorts", duration=181),
    generate(platform="instagram_reels", duration=181),
    generate(platform="youtube", duration=1201),
    generate(tone=5),
    generate(tone="x" * 201),
    generate(audience=["kids"]),
    generate(audience="x" * 201),
    generate(request_id=5),
    generate(request_id=""),
    generate(request_id="r" * 101),
    {"type": "cancel"},
    {"type": "cancel", "session_id": 5},
    {"type": "resume", "session_id": SESSION, "last_seq": -1},
    {"type": "resume", "session_id": SESSION, "last_seq": "3"},
    {"type": "resume", "session_id": SESSION, "last_seq": True},
    {"type": "resume", "session_id": SESSION, "last_seq": 4.0},
    {"type": "resume", "session_id": SESSION, "last_seq": protocol.MAX_SEQ + 1},
    {"type": "resume", "session_id": SESSION, "last_seq": 2**63 - 1},
    {"type": "resume", "session_id": SESSION, "last_seq": -(2**63)},
    {"type": "resume", "session_id": None},
    {"type": "auth"},
    {"type": "auth", "token": None},
    {"type": "auth", "token": ""},
    {"type": "auth", "token": "   "},
    {"type": "auth", "token": 42},
    {"type": "auth", "token": ["a.b.c"]},
    {"type": "auth", "token": "t" * (protocol.TOKEN_MAX_CHARS + 1)},
]


@pytest.mark.parametrize("frame", INVALID_FIELDS, ids=lambda f: orjson.dumps(f).decode()[:60])
def test_invalid_fields_are_bad_request(frame: dict[str, Any]) -> None:
    """A known frame with a wrong field type or range is a bad_request."""
    with pytest.raises(ClientError) as caught:
        parse(frame)
    assert caught.value.code is ErrorCode.BAD_REQUEST
    assert caught.value.message


# Integers orjson.dumps cannot write (past 64 bits), and those orjson.loads reads as floats: sent as raw text.
OUT_OF_RANGE_SEQS = [str(2**63), str(2**64 - 1), str(2**64), str(10**30), str(-(2**63) - 1), "1e3"]


@pytest.mark.parametrize("last_seq", OUT_OF_RANGE_SEQS)
def test_huge_last_seq_is_bad_request(last_seq: str) -> None:
    """However large or small a JSON number last_seq is, it is a bad_request that names the range."""
    text = f'{{"type": "resume", "session_id": "{SESSION}", "last_seq": {last_seq}}}'
    with pytest.raises(ClientError) as caught:
        protocol.parse_client_frame(text, None, LIMIT)
    assert caught.value.code is ErrorCode.BAD_REQUEST
    assert caught.value.message == f"'last_seq' must be an integer from 0 to {protocol.MAX_SEQ}."


@pytest.mark.parametrize("session_id", ["nope", "", "1234", SESSION[:-1]])
@pytest.mark.parametrize("kind", ["cancel", "resume"])
def test_malformed_session_id_is_not_found(kind: str, session_id: str) -> None:
    """A session_id that is no uuid names no session: not_found, like an unknown one."""
    with pytest.raises(ClientError) as caught:
        parse({"type": kind, "session_id": session_id})
    assert caught.value.code is ErrorCode.NOT_FOUND


@pytest.mark.parametrize(
    "frame",
    [
        generate(request_id="r9", duration=1),
        {"type": "explode", "request_id": "r9"},
        {"type": "cancel", "session_id": "nope", "request_id": "r9"},
        {"type": 3, "request_id": "r9"},
    ],
)
def test_error_carries_request_id(frame: dict[str, Any]) -> None:
    """A refused frame that named a request_id gets it back on the error."""
    with pytest.raises(ClientError) as caught:
        parse(frame)
    assert caught.value.request_id == "r9"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"{}", ErrorCode.BAD_REQUEST),
        (b"\x00\xff", ErrorCode.BAD_REQUEST),
        (b"x" * (LIMIT + 1), ErrorCode.PAYLOAD_TOO_LARGE),
    ],
)
def test_binary_frames_refused(data: bytes, code: ErrorCode) -> None:
    """Binary frames are never parsed: bad_request, or payload_too_large when over the limit."""
    with pytest.raises(ClientError) as caught:
        protocol.parse_client_frame(None, data, LIMIT)
    assert caught.value.code is code


def test_frame_at_the_limit_is_parsed() -> None:
    """A frame of exactly 64 KiB is still handled; one byte more is payload_too_large."""
    head = '{"type":"ping","id":1,"pad":"'
    text = head + "x" * (LIMIT - len(head) - 2) + '"}'
    assert len(text.encode()) == LIMIT
    assert protocol.parse_client_frame(text, None, LIMIT) == Ping(id=1)
    with pytest.raises(ClientError) as caught:
        protocol.parse_client_frame(text[:-2] + 'x"}', None, LIMIT)
    assert caught.value.code is ErrorCode.PAYLOAD_TOO_LARGE


@pytest.mark.parametrize(("duration", "words"), [(5, 12), (30, 75), (60, 150), (180, 450), (1200, 3000)])
def test_estimate_is_150_words_a_minute(duration: int, words: int) -> None:
    """The estimate is about 150 spoken words per minute of duration."""
    assert protocol.estimate_words(duration) == words


def test_every_error_code_is_its_wire_string() -> None:
    """The issue's error codes are spelled on the wire exactly as documented."""
    wire = {code.value for code in ErrorCode}
    documented = {
        "bad_request",
        "unknown_type",
        "not_found",
        "payload_too_large",
        "rate_limited",
        "too_many_streams",
        "internal_error",
    }
    assert documented <= wire


BUILDERS = [
    (protocol.pong("p1"), {"type": "pong", "id": "p1"}),
    (protocol.ping(3), {"type": "ping", "id": 3}),
    (protocol.error(ErrorCode.NOT_FOUND, "No such session."), {"type": "error", "code": "not_found"}),
    (protocol.error(ErrorCode.BAD_REQUEST, "m", "r1"), {"type": "error", "code": "bad_request", "request_id": "r1"}),
    (
        protocol.stream_started("r1", SESSION, 150, "mock"),
        {
            "type": "stream.started",
            "request_id": "r1",
            "session_id": SESSION,
            "estimated_words": 150,
            "provider": "mock",
        },
    ),
    (
        protocol.stream_completed(SESSION, 9, 150, 1200, {"total_tokens": 150}),
        {"type": "stream.completed", "session_id": SESSION, "script_id": 9, "seq": 150, "words": 150},
    ),
    (
        protocol.stream_failed(SESSION, 4, ErrorCode.AI_TIMEOUT, "slow"),
        {"type": "stream.failed", "seq": 4, "error": {"code": "ai_timeout", "message": "slow"}},
    ),
    (protocol.stream_cancelled(SESSION, 7), {"type": "stream.cancelled", "session_id": SESSION, "seq": 7}),
]


@pytest.mark.parametrize(
    ("frame", "expected"), BUILDERS, ids=lambda v: str(v.get("type")) if isinstance(v, dict) else ""
)
def test_builders_produce_documented_frames(frame: dict[str, Any], expected: dict[str, Any]) -> None:
    """Each builder's frame carries the documented fields and survives a JSON round trip."""
    decoded = orjson.loads(protocol.encode(frame))
    assert {key: decoded[key] for key in expected} == expected


def test_error_without_request_id_omits_it() -> None:
    """An error frame with no request_id has no request_id key at all."""
    assert "request_id" not in protocol.error(ErrorCode.BAD_REQUEST, "m")


def test_pong_server_time_is_iso_utc() -> None:
    """pong carries an ISO-8601 UTC server time."""
    assert protocol.pong(1)["server_time"].endswith("Z")


@pytest.mark.parametrize("text", ["Hook: ", 'say "hi" ', "naïve\n", "\\back ", "</script> "])
def test_chunk_is_valid_json_with_exact_text(text: str) -> None:
    """The hand-assembled chunk frame is valid JSON and carries the word verbatim."""
    frame = orjson.loads(protocol.stream_chunk(SESSION, 3, text, 150))
    assert frame == {
        "type": "stream.chunk",
        "session_id": SESSION,
        "seq": 3,
        "text": text,
        "words": 3,
        "progress": 0.02,
    }


@pytest.mark.parametrize(("seq", "estimate"), [(1, 1), (1, 150), (150, 150), (400, 150), (75, 150)])
def test_progress_stays_in_range(seq: int, estimate: int) -> None:
    """Progress is within [0, 1) while streaming, even when the script runs past its estimate."""
    assert 0 <= protocol.progress(seq, estimate) < 1


def test_progress_never_goes_down() -> None:
    """Progress rises or holds with every seq."""
    values = [protocol.progress(seq, 150) for seq in range(1, 400)]
    assert values == sorted(values)


def test_established_reflects_settings(settings: Any) -> None:
    """connection.established announces the configured heartbeat and timeout, and when the token expires."""
    settings.STREAMING = {**settings.STREAMING, "HEARTBEAT_INTERVAL_S": 5, "CONNECTION_TIMEOUT_S": 11}
    frame = protocol.connection_established("c1", 3, "alice", token_expires_at=1_795_000_000)
    assert frame == {
        "type": "connection.established",
        "connection_id": "c1",
        "user": {"id": 3, "username": "alice"},
        "heartbeat_interval": 5,
        "connection_timeout": 11,
        "protocol": 1,
        "token_expires_at": "2026-11-18T11:06:40Z",
    }


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ({"type": "generate", "platform": "tiktok", "duration": 30}, "'topic' is required."),
        ({"type": "generate", "topic": 5, "platform": "tiktok", "duration": 30}, "'topic' must be a string."),
        ({"type": "generate", "topic": "  ", "platform": "tiktok", "duration": 30}, "'topic' must not be empty."),
        ({"type": "cancel"}, "'session_id' is required."),
        ({"type": "resume", "last_seq": 0}, "'session_id' is required."),
    ],
)
def test_missing_field_says_it_is_required(frame: dict[str, Any], message: str) -> None:
    """A missing field is named as required, not as the wrong type."""
    with pytest.raises(ClientError) as caught:
        parse(frame)
    assert (caught.value.code, caught.value.message) == (ErrorCode.BAD_REQUEST, message)


@pytest.mark.parametrize(
    ("epoch", "iso"),
    [(0, "1970-01-01T00:00:00Z"), (1_795_000_000, "2026-11-18T11:06:40Z"), (1_795_000_000.9, "2026-11-18T11:06:40Z")],
)
def test_auth_ok_carries_expiry_in_iso_utc(epoch: float, iso: str) -> None:
    """auth.ok says when the socket's new token expires, ISO 8601 UTC with a Z, whole seconds."""
    assert orjson.loads(protocol.encode(protocol.auth_ok(epoch))) == {"type": "auth.ok", "token_expires_at": iso}


def test_auth_frame_never_shows_its_token() -> None:
    """An auth frame's repr (what a log or a traceback would print) does not contain the token."""
    assert "secret-token" not in repr(parse({"type": "auth", "token": "secret-token"}))


def test_auth_error_message_never_echoes_the_token() -> None:
    """A refused auth frame's error message does not repeat what was sent."""
    with pytest.raises(ClientError) as caught:
        parse({"type": "auth", "token": "x" * (protocol.TOKEN_MAX_CHARS + 1)})
    assert "xxxx" not in caught.value.message


EXPECTED_AUTH_CODES = {
    AuthCause.TOKEN_EXPIRED: CloseCode.UNAUTHORIZED,
    AuthCause.TOKEN_INVALID: CloseCode.UNAUTHORIZED,
    AuthCause.AUTH_TOKEN_EXPIRED: CloseCode.UNAUTHORIZED,
    AuthCause.OTHER_USER: CloseCode.UNAUTHORIZED,
    AuthCause.PASSWORD_CHANGED: CloseCode.UNAUTHORIZED,
    AuthCause.LOGGED_OUT: CloseCode.UNAUTHORIZED,
    AuthCause.SIGNED_OUT_EVERYWHERE: CloseCode.UNAUTHORIZED,
    AuthCause.CLOSED_BY_OPERATOR: CloseCode.UNAUTHORIZED,
    AuthCause.DEACTIVATED: CloseCode.FORBIDDEN,
}


@pytest.mark.parametrize(("cause", "code"), EXPECTED_AUTH_CODES.items(), ids=str)
def test_every_auth_cause_has_its_code_and_own_reason(cause: AuthCause, code: CloseCode) -> None:
    """Each way a socket's authentication ends closes with its code (4401 sign in again, 4403 stop) and a reason
    of its own that fits in a close frame (123 bytes)."""
    assert AUTH_CLOSES[cause][0] is code
    reason = AUTH_CLOSES[cause][1]
    assert 0 < len(reason.encode()) <= 123
    assert reason != CLOSE_REASONS[code]
    assert [other for other, (_, text) in AUTH_CLOSES.items() if text == reason] == [cause]


def test_every_auth_cause_is_mapped() -> None:
    """No cause is left without a close."""
    assert set(AUTH_CLOSES) == set(AuthCause) == set(EXPECTED_AUTH_CODES)
