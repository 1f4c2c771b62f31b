"""Bad input over the real application: one error frame each, the connection stays usable, other users untouched."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from tests.conftest import access_for
from tests.wsclient import AppClient

KIB = 1024


async def assert_still_works(ws: AppClient) -> None:
    """The same socket still answers a ping."""
    await ws.send({"type": "ping", "id": "still-here"})
    pong = await ws.recv()
    assert pong["type"] == "pong" and pong["id"] == "still-here", pong


async def error_for_raw(ws: AppClient, text: str | None = None, data: bytes | None = None) -> dict[str, Any]:
    await ws.send_raw(text=text, data=data)
    frame = await ws.recv()
    assert frame["type"] == "error", frame
    assert isinstance(frame["message"], str) and frame["message"]
    return frame


@pytest.fixture
def pace(settings: Any) -> None:
    """Mock words 20 ms apart, so a stream is still running while the test acts on it."""
    settings.STREAMING = {**settings.STREAMING, "MOCK_STREAM_DELAY_MS": 20}


RAW_TEXT = [
    ("not json", "bad_request"),
    ('{"type": "ping"', "bad_request"),
    ("[" * 50_000, "bad_request"),
    ('{"a":' * 5_000 + "1" + "}" * 5_000, "bad_request"),
    ("[1, 2, 3]", "bad_request"),
    ('"ping"', "bad_request"),
    ("null", "bad_request"),
    ("{}", "bad_request"),
    ('{"type": 7}', "bad_request"),
    ('{"type": "explode"}', "unknown_type"),
    ("[" * 100_000, "payload_too_large"),
    ("x" * (64 * KIB + 1), "payload_too_large"),
]


@pytest.mark.parametrize(("text", "code"), RAW_TEXT, ids=lambda v: repr(v)[:24])
async def test_bad_text_gets_one_error_and_connection_lives(ws: AppClient, text: str, code: str) -> None:
    """Unusable text gets exactly one error with its code, and the socket still answers a ping."""
    frame = await error_for_raw(ws, text=text)
    assert frame["code"] == code
    assert "request_id" not in frame
    assert await ws.nothing(0.05)
    await assert_still_works(ws)


@pytest.mark.parametrize(
    ("data", "code"), [(b'{"type":"ping","id":1}', "bad_request"), (b"\x00" * (64 * KIB + 1), "payload_too_large")]
)
async def test_binary_frame_gets_one_error_and_connection_lives(ws: AppClient, data: bytes, code: str) -> None:
    """A binary frame is refused with one error (payload_too_large when over 64 KiB); the socket lives."""
    frame = await error_for_raw(ws, data=data)
    assert frame["code"] == code
    await assert_still_works(ws)


async def test_frame_of_exactly_64_kib_is_handled(ws: AppClient) -> None:
    """A 64 KiB frame is still within the limit and gets its answer."""
    head = '{"type":"ping","id":"edge","pad":"'
    text = head + "x" * (64 * KIB - len(head) - 2) + '"}'
    await ws.send_raw(text=text)
    assert (await ws.recv())["type"] == "pong"


async def test_oversized_frame_echoes_nothing_back(ws: AppClient) -> None:
    """A 70 KiB generate is refused as payload_too_large without being parsed (no request_id)."""
    frame = {"type": "generate", "request_id": "big", "topic": "x" * (70 * KIB), "platform": "tiktok", "duration": 30}
    error = await error_for_raw(ws, text=orjson.dumps(frame).decode())
    assert error["code"] == "payload_too_large" and "request_id" not in error
    await assert_still_works(ws)


def generate(**fields: Any) -> dict[str, Any]:
    return {
        "type": "generate",
        "request_id": "bad-1",
        "topic": "coffee",
        "platform": "tiktok",
        "duration": 30,
        **fields,
    }


BAD_GENERATE = [
    generate(topic=None),
    generate(topic=""),
    generate(topic=42),
    generate(topic="t" * 501),
    generate(platform="myspace"),
    generate(platform=None),
    generate(duration="30"),
    generate(duration=30.5),
    generate(duration=4),
    generate(platform="tiktok", duration=601),
    generate(platform="linkedin", duration=601),
    generate(platform="youtube_shorts", duration=181),
    generate(platform="instagram_reels", duration=181),
    generate(platform="youtube", duration=1201),
    generate(tone=1),
    generate(tone="x" * 201),
    generate(audience={"who": "kids"}),
    generate(audience="x" * 201),
]


@pytest.mark.parametrize("frame", BAD_GENERATE, ids=lambda f: orjson.dumps(f).decode()[58:110])
async def test_bad_generate_field_is_bad_request_with_request_id(ws: AppClient, frame: dict[str, Any]) -> None:
    """A generate with a wrong field type or range is one bad_request echoing request_id; no stream starts."""
    await ws.send(frame)
    error = await ws.recv()
    assert error == {"type": "error", "code": "bad_request", "message": error["message"], "request_id": "bad-1"}
    assert await ws.nothing(0.05)
    await assert_still_works(ws)


async def test_unknown_type_echoes_request_id(ws: AppClient) -> None:
    """An unknown type is unknown_type with the request_id given."""
    await ws.send({"type": "explode", "request_id": "u1"})
    error = await ws.recv()
    assert (error["code"], error["request_id"]) == ("unknown_type", "u1")
    await assert_still_works(ws)


async def test_missing_type_is_bad_request(ws: AppClient) -> None:
    """A frame without a type is bad_request with the request_id given."""
    await ws.send({"request_id": "m1", "topic": "coffee"})
    error = await ws.recv()
    assert (error["code"], error["request_id"]) == ("bad_request", "m1")
    await assert_still_works(ws)


@pytest.mark.parametrize("kind", ["cancel", "resume"])
async def test_unknown_session_is_not_found(ws: AppClient, kind: str) -> None:
    """cancel/resume of a session that never existed is not_found, echoing request_id."""
    await ws.send({"type": kind, "session_id": str(uuid.uuid4()), "request_id": "s1"})
    error = await ws.recv()
    assert (error["code"], error.get("request_id")) == ("not_found", "s1")
    await assert_still_works(ws)


@pytest.mark.parametrize("kind", ["cancel", "resume"])
async def test_malformed_session_id_is_not_found(ws: AppClient, kind: str) -> None:
    """A session_id that is no uuid is answered like an unknown one."""
    await ws.send({"type": kind, "session_id": "../../etc/passwd", "request_id": "s2"})
    error = await ws.recv()
    assert (error["code"], error.get("request_id")) == ("not_found", "s2")
    await assert_still_works(ws)


@pytest.mark.parametrize("kind", ["cancel", "resume"])
async def test_other_users_running_session_is_indistinguishable(
    ws: AppClient, other_user: Any, kind: str, pace: None
) -> None:
    """Another user's running session is answered exactly like an unknown one, and their stream goes on."""
    bob = AppClient(token=access_for(other_user))
    await bob.open()
    theirs = await bob.generate(duration=20)
    await ws.send({"type": kind, "session_id": theirs["session_id"], "request_id": "x"})
    foreign = await ws.recv()
    await ws.send({"type": kind, "session_id": str(uuid.uuid4()), "request_id": "x"})
    unknown = await ws.recv()
    assert foreign == unknown
    assert foreign["code"] == "not_found"
    assert await ws.nothing(0.1)
    bob_frames = await bob.recv_until({"stream.completed", "stream.cancelled", "stream.failed"})
    await bob.close()
    assert bob_frames[-1]["type"] == "stream.completed"


@pytest.mark.parametrize("kind", ["cancel", "resume"])
async def test_other_users_finished_session_is_indistinguishable(ws: AppClient, other_user: Any, kind: str) -> None:
    """Another user's finished session is answered exactly like an unknown one."""
    bob = AppClient(token=access_for(other_user))
    await bob.open()
    theirs = await bob.generate()
    await bob.recv_until({"stream.completed"})
    await bob.close()
    await ws.send({"type": kind, "session_id": theirs["session_id"], "request_id": "x"})
    foreign = await ws.recv()
    await ws.send({"type": kind, "session_id": str(uuid.uuid4()), "request_id": "x"})
    assert foreign == await ws.recv()
    assert foreign["code"] == "not_found"


async def test_flood_is_rate_limited_once(token: str, settings: Any) -> None:
    """A flood beyond the burst gets one rate_limited error, not one per frame, and no more pongs than the burst."""
    settings.STREAMING = {**settings.STREAMING, "RATE_LIMIT_BURST": 5, "RATE_LIMIT_PER_S": 0.001}
    client = AppClient(token=token)
    await client.open()
    for n in range(30):
        await client.send({"type": "ping", "id": n})
    frames = await client.recv_until({"error"})
    assert [f["type"] for f in frames] == ["pong"] * 5 + ["error"]
    assert frames[-1]["code"] == "rate_limited"
    assert await client.nothing(0.1)
    await client.close()


async def test_rate_limited_connection_recovers(token: str, settings: Any) -> None:
    """After a flood the same socket is served again once the bucket refills."""
    settings.STREAMING = {**settings.STREAMING, "RATE_LIMIT_BURST": 3, "RATE_LIMIT_PER_S": 50}
    client = AppClient(token=token)
    await client.open()
    for n in range(20):
        await client.send({"type": "ping", "id": n})
    await client.recv_until({"error"})
    for attempt in range(100):  # refills at 50/s: each retry waits on a frame with a timeout
        await client.send({"type": "ping", "id": f"after-{attempt}"})
        if not await client.nothing(0.05):
            frame = await client.recv()
            if frame["type"] == "pong":
                break
    else:
        pytest.fail("the rate-limited socket was never served again")
    await client.close()


async def test_flood_does_not_touch_other_users(token: str, other_user: Any, settings: Any) -> None:
    """One socket's flood leaves another user's socket answering normally."""
    settings.STREAMING = {**settings.STREAMING, "RATE_LIMIT_BURST": 3, "RATE_LIMIT_PER_S": 0.001}
    alice, bob = AppClient(token=token), AppClient(token=access_for(other_user))
    await alice.open()
    await bob.open()
    for n in range(20):
        await alice.send({"type": "ping", "id": n})
    await alice.recv_until({"error"})
    await assert_still_works(bob)
    await alice.close()
    await bob.close()


async def test_too_many_streams_on_one_connection(ws: AppClient, settings: Any, pace: None) -> None:
    """A generate beyond the per-connection limit is too_many_streams with its request_id; the others run on."""
    settings.STREAMING = {**settings.STREAMING, "MAX_STREAMS_PER_CONNECTION": 2}
    first = await ws.generate(request_id="a", duration=60)
    await ws.send(generate(request_id="b", duration=60))
    await ws.send(generate(request_id="c", duration=60))
    frames = await ws.recv_until({"error"})
    error = frames[-1]
    assert (error["code"], error.get("request_id")) == ("too_many_streams", "c")
    # "b" was admitted: its stream.started comes before or after the refusal of "c", never an error.
    if not any(f["type"] == "stream.started" for f in frames):
        frames += await ws.recv_until({"stream.started"})
    started = [f for f in frames if f["type"] == "stream.started"]
    assert [f["request_id"] for f in started] == ["b"]
    assert [f for f in frames if f["type"] == "error"] == [error]
    await ws.send({"type": "cancel", "session_id": first["session_id"]})
    await ws.recv_until({"stream.cancelled"})
    await assert_still_works(ws)


async def test_too_many_streams_per_user_across_connections(
    ws: AppClient, token: str, settings: Any, pace: None
) -> None:
    """A user's streams are capped across their connections: the next generate is too_many_streams."""
    settings.STREAMING = {**settings.STREAMING, "MAX_STREAMS_PER_USER": 1}
    await ws.generate(duration=60)
    second = AppClient(token=token)
    await second.open()
    await second.send(generate(request_id="over"))
    error = await second.recv()
    assert (error["code"], error.get("request_id")) == ("too_many_streams", "over")
    await assert_still_works(second)
    await second.close()


async def test_stream_slot_frees_after_completion(ws: AppClient, settings: Any) -> None:
    """Once a stream ends, its slot is free: the limit counts running streams only."""
    settings.STREAMING = {**settings.STREAMING, "MAX_STREAMS_PER_CONNECTION": 1}
    await ws.generate(request_id="one")
    await ws.recv_until({"stream.completed"})
    assert (await ws.generate(request_id="two"))["request_id"] == "two"
