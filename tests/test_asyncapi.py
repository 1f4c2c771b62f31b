"""The AsyncAPI contract: docs/asyncapi.yaml is valid AsyncAPI 3 and agrees with protocol.py and docs/protocol.md.

Every frame a test client receives is checked against it too (FrameClient.recv -> tests/asyncapi.py); the tables
here pin what that check says and that protocol.py's builders and parser agree with the document at the edges.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match

from streaming import protocol
from streaming.protocol import CLOSE_REASONS, ClientError, CloseCode, ErrorCode
from tests.asyncapi import (
    CLIENT_OPERATION,
    ROOT,
    SERVER_OPERATION,
    Example,
    asyncapi_document,
    check_example,
    check_server_frame,
    messages_of,
    problems,
    protocol_examples,
    resolve,
)
from tests.wsclient import FrameClient

SPEC = Path(__file__).resolve().parent / "schemas" / "asyncapi-3.0.0.json"
SESSION = str(uuid.uuid4())
EXAMPLES = protocol_examples((ROOT / "docs" / "protocol.md").read_text())


def schemas() -> dict[str, Any]:
    found: dict[str, Any] = asyncapi_document()["components"]["schemas"]
    return found


# ---------------------------------------------------------------- the document


def test_document_is_valid_asyncapi_3() -> None:
    """docs/asyncapi.yaml validates against the AsyncAPI 3.0.0 JSON Schema (vendored in tests/schemas/)."""
    error = best_match(Draft7Validator(json.loads(SPEC.read_text())).iter_errors(asyncapi_document()))
    assert error is None, f"docs/asyncapi.yaml at {error.json_path}: {error.message}"


def test_every_channel_message_is_in_one_operation() -> None:
    """Each message of the channel is sent or received by exactly one operation, and each reference resolves."""
    channel = set(asyncapi_document()["channels"]["stream"]["messages"])
    listed = [
        ref["$ref"].rsplit("/", 1)[-1]
        for operation in (SERVER_OPERATION, CLIENT_OPERATION)
        for ref in asyncapi_document()["operations"][operation]["messages"]
    ]
    assert sorted(listed) == sorted(channel)
    server, client = messages_of(SERVER_OPERATION), messages_of(CLIENT_OPERATION)
    assert len(server) + len(client) == len(channel)


@pytest.mark.parametrize("operation", [SERVER_OPERATION, CLIENT_OPERATION])
def test_every_frame_schema_is_closed(operation: str) -> None:
    """Every frame is an object with a constant `type`, its required fields named and no field left open."""
    for kind, message in messages_of(operation).items():
        payload = resolve(asyncapi_document()["components"]["messages"][message.key]["payload"])
        assert payload["type"] == "object", kind
        assert payload["additionalProperties"] is False, f"{kind} admits fields it does not name"
        assert "type" in payload["required"], kind
        assert set(payload["required"]) <= set(payload["properties"]), kind


def test_error_codes_are_protocol_py_s() -> None:
    """The error-frame and stream.failed code lists together are exactly ErrorCode."""
    documented = set(schemas()["ErrorFrameCode"]["enum"]) | set(schemas()["StreamFailureCode"]["enum"])
    spoken = {code.value for code in ErrorCode}
    assert spoken - documented == set(), (
        f"ErrorCode {sorted(spoken - documented)} not in docs/asyncapi.yaml: add it to ErrorFrameCode (error frames)"
        " or StreamFailureCode (stream.failed)"
    )
    assert documented - spoken == set(), f"docs/asyncapi.yaml lists {sorted(documented - spoken)}, unknown to ErrorCode"


def test_close_codes_and_reasons_are_protocol_py_s() -> None:
    """CloseCode in the document has every code of CloseCode, each with its CLOSE_REASONS text."""
    documented = {entry["const"]: entry["x-close-reason"] for entry in schemas()["CloseCode"]["oneOf"]}
    spoken = {int(code): CLOSE_REASONS[code] for code in CloseCode}
    missing = sorted(set(spoken) - set(documented))
    assert not missing, (
        f"close codes {missing} not in docs/asyncapi.yaml: add {{const, title, description, x-close-reason}} "
        "to components.schemas.CloseCode.oneOf"
    )
    assert documented == spoken


# ---------------------------------------------------------------- docs/protocol.md


def test_protocol_md_has_an_example_of_every_client_frame_and_stream_frame() -> None:
    """The examples parsed from docs/protocol.md cover the frames a reader needs (nothing was skipped)."""
    kinds = {example.frame["type"] for example in EXAMPLES}
    assert kinds >= set(messages_of(CLIENT_OPERATION)) | {"connection.established", "error", "stream.chunk"}
    assert kinds >= protocol.TERMINAL_TYPES | {"stream.started"}


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.name for example in EXAMPLES])
def test_protocol_md_example_validates(example: Example) -> None:
    """A fenced json example of docs/protocol.md is a frame the document describes."""
    check_example(example)


def test_examples_parser_reads_elisions_comments_and_multiline_frames() -> None:
    """`…` lines are skipped, `// a -> b` gives the direction, an object may span lines."""
    text = (
        "intro\n\n```json\n"
        '{"type": "ping", "id": "p1"}   // client -> server\n'
        "…\n"
        '{"type": "stream.cancelled",\n "session_id": "5f0e…", "seq": 12}\n'
        "```\n"
    )
    examples = protocol_examples(text)
    assert [(e.line, e.direction, e.frame["type"]) for e in examples] == [
        (4, "client", "ping"),
        (6, None, "stream.cancelled"),
    ]


def test_a_wrong_example_is_named_with_its_line_and_field() -> None:
    """An example off the document fails with its place in protocol.md and the offending field."""
    example = Example(77, {"type": "stream.cancelled", "session_id": "5f0e…", "seq": -1}, None)
    with pytest.raises(AssertionError, match=r"protocol.md:77:stream.cancelled .*\$\.seq: -1 is less than"):
        check_example(example)


# ---------------------------------------------------------------- the frame check


async def test_frames_a_client_receives_are_checked() -> None:
    """FrameClient.recv refuses a frame the document does not describe: the hook every test goes through."""

    class Canned(FrameClient):
        async def receive(self, timeout: float = 5) -> dict[str, Any]:
            return {"type": "auth.renewed"}

    with pytest.raises(AssertionError, match=r"server frame of type 'auth\.renewed' is not in docs/asyncapi\.yaml"):
        await Canned().recv()


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (
            {"type": "auth.renewed"},
            "server frame of type 'auth.renewed' is not in docs/asyncapi.yaml: add a schema under components.schemas "
            "with `type: {const: auth.renewed}`",
        ),
        (
            {"type": "stream.chunk", "session_id": SESSION, "seq": 3, "text": "a ", "words": 3, "progress": 1.0},
            "server frame 'stream.chunk' does not match docs/asyncapi.yaml components.messages.streamChunk: "
            "$.progress: 1.0 is greater than or equal to the maximum of 1",
        ),
        (
            {"type": "stream.chunk", "session_id": SESSION, "seq": 3, "text": "a b ", "progress": 0.1},
            "$: 'words' is a required property",
        ),
        (
            {"type": "error", "code": "over_budget", "message": "Daily limit."},
            "$.code: 'over_budget' is not one of",
        ),
        (
            {"type": "error", "code": "bad_request", "message": "Nope.", "retry_in": 3},
            "$: Additional properties are not allowed ('retry_in' was unexpected)",
        ),
        (
            {"type": "error", "code": "quota_exceeded", "message": "Daily limit.", "resets_at": "soon"},
            "$.resets_at: 'soon' is not a 'date-time'",
        ),
        (
            {"type": "stream.failed", "session_id": "abc", "seq": 0, "error": {"code": "ai_timeout", "message": "m"}},
            "$.session_id: 'abc' is not a 'uuid'",
        ),
        (
            {"type": "stream.failed", "session_id": SESSION, "seq": 0, "error": {"code": "nope", "message": "m"}},
            "$.error.code: 'nope' is not one of",
        ),
        (
            {
                "type": "stream.started",
                "request_id": 7,
                "session_id": SESSION,
                "estimated_words": 1,
                "provider": "mock",
            },
            "$.request_id: 7 is not of type",
        ),
    ],
)
def test_frame_check_names_type_and_field(frame: dict[str, Any], message: str) -> None:
    """A frame off the document fails with its type, the message it should match and the offending field's path."""
    with pytest.raises(AssertionError) as failure:
        check_server_frame(frame)
    assert message in str(failure.value)


def server_frames() -> list[Any]:
    """One of each frame protocol.py builds, with the edges a real stream reaches."""
    return [
        protocol.connection_established(SESSION, 7, "alice", token_expires_at=1_795_000_000),
        protocol.auth_ok(1_795_000_900),
        protocol.ping(1),
        *(protocol.pong(ping_id) for ping_id in ("p1", 3, None, "x" * 100)),
        *(protocol.error(ErrorCode(code), "A message.", "r1") for code in schemas()["ErrorFrameCode"]["enum"]),
        protocol.error(ErrorCode.NOT_FOUND, "No such session."),
        protocol.stream_started("r1", SESSION, 150, "openai"),
        protocol.stream_started(None, SESSION, 1, "mock", fallback=True),
        orjson.loads(protocol.stream_chunk(SESSION, 1, "Hook: ", 150)),
        orjson.loads(protocol.stream_chunk(SESSION, 500, "last ", 150)),
        protocol.stream_completed(
            SESSION, 42, 150, 3912, {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
        ),
        protocol.stream_completed(SESSION, None, 0, 0, {}, fallback=True),
        *(
            protocol.stream_failed(SESSION, 37, ErrorCode(code), "Why.")
            for code in schemas()["StreamFailureCode"]["enum"]
        ),
        protocol.stream_cancelled(SESSION, 0),
    ]


def test_every_frame_protocol_py_builds_validates() -> None:
    """protocol.py's builders, with every code and optional field, make frames the document describes."""
    for frame in server_frames():
        check_server_frame(frame)


# ---------------------------------------------------------------- client frames: the schema and the parser agree


def generate(**fields: Any) -> dict[str, Any]:
    return {"type": "generate", "topic": "coffee", "platform": "tiktok", "duration": 60, **fields}


CLIENT_EDGES = [
    {"type": "ping"},
    {"type": "ping", "id": "x" * 100},
    {"type": "ping", "id": "x" * 101},
    {"type": "ping", "id": 1.5},
    {"type": "pong", "id": 3},
    generate(),
    generate(request_id="r" * 100, tone=None, audience="a" * 200),
    generate(request_id=""),
    generate(request_id="r" * 101),
    generate(topic=""),
    generate(topic="   "),
    generate(topic="t" * 501),
    generate(tone="t" * 201),
    generate(platform="myspace"),
    generate(duration=4),
    generate(duration="60"),
    *(
        generate(platform=platform.value, duration=longest + extra)
        for platform, longest in protocol.PLATFORM_MAX_DURATION_S.items()
        for extra in (0, 1)
    ),
    {"type": "cancel", "session_id": SESSION},
    {"type": "cancel"},
    {"type": "resume", "session_id": SESSION},
    {"type": "resume", "session_id": SESSION, "last_seq": protocol.MAX_SEQ},
    {"type": "resume", "session_id": SESSION, "last_seq": protocol.MAX_SEQ + 1},
    {"type": "resume", "session_id": SESSION, "last_seq": -1},
    {"type": "resume", "session_id": SESSION, "last_seq": "4"},
]


@pytest.mark.parametrize("frame", CLIENT_EDGES, ids=lambda frame: orjson.dumps(frame).decode()[:60])
def test_schema_accepts_what_the_parser_accepts(frame: dict[str, Any]) -> None:
    """At the edges of every rule, docs/asyncapi.yaml and parse_client_frame accept and refuse the same frames."""
    try:
        protocol.parse_client_frame(orjson.dumps(frame).decode(), None, 64 * 1024)
        parsed = True
    except ClientError:
        parsed = False
    found = problems(frame, messages_of(CLIENT_OPERATION)[frame["type"]])
    assert (not found) == parsed, f"parser {'accepts' if parsed else 'refuses'} it; the document says {found or 'ok'}"
