"""Scripts from the OpenAI provider over the socket: the real application and SDK against the fake server."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from channels.db import database_sync_to_async
from django.test import AsyncClient
from pytest_django.fixtures import Settings

from streaming import protocol
from streaming.models import StreamSession
from tests.fake_openai import FakeOpenAI, Scenario, unused_port
from tests.fixtures_openai import FAKE_API_KEY
from tests.wsclient import AppClient

pytestmark = pytest.mark.timeout(30)

TERMINAL = protocol.TERMINAL_TYPES
FAKE_USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
SCRIPT = "Stop scrolling: café crème in 30 seconds. 咖啡 tastes best fresh 👍🏽 — try it tonight!"
# Every delta splits a word; the fake then writes each SSE event 5 bytes at a time, so the HTTP body is cut
# inside multibyte UTF-8 characters too.
SCRIPT_DELTAS = [SCRIPT[i : i + 4] for i in range(0, len(SCRIPT), 4)]
# A word is sent once the next one begins, so after n deltas the socket has carried n - 1 words.
DELTAS = ["one ", "two ", "three ", "four ", "five"]


async def stream(ws: AppClient, **fields: Any) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """generate -> (stream.started, the stream.chunk frames, the terminal frame)."""
    started = await ws.generate(**fields)
    frames = await ws.recv_until(TERMINAL)
    chunks, end = frames[:-1], frames[-1]
    assert {chunk["type"] for chunk in chunks} <= {"stream.chunk"}, chunks
    return started, chunks, end


async def saved(session_id: str) -> StreamSession:
    return await database_sync_to_async(StreamSession.objects.get)(session_id=session_id)


def texts(chunks: list[dict[str, Any]]) -> list[str]:
    return [chunk["text"] for chunk in chunks]


# ---------------------------------------------------------------- a whole script


async def test_whole_script_arrives_as_whole_words(
    ws: AppClient, openai_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    """Deltas split mid-word and mid-character arrive as whole words with contiguous seq, then completed."""
    fake_openai.serve(Scenario(deltas=SCRIPT_DELTAS, byte_split=5))
    started, chunks, end = await stream(ws)
    assert started["provider"] == "openai" and "fallback" not in started
    assert texts(chunks) == re.findall(r"\S+\s*", SCRIPT)
    assert [chunk["seq"] for chunk in chunks] == list(range(1, len(chunks) + 1))
    assert end["type"] == "stream.completed" and end["seq"] == len(chunks)
    assert end["usage"] == FAKE_USAGE and "fallback" not in end


async def test_multi_word_frames_from_the_provider_reassemble_to_the_script(
    ws: AppClient, openai_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    """A client that asked for multi-word frames, deltas 10 ms apart (over the lean transport the body is then
    read by the loop's read pass, a window at a time): the frames cover seq 1..N once, in order, and
    reassemble to the script; the terminal comes last with the last seq."""
    fake_openai.serve(Scenario(deltas=SCRIPT_DELTAS, delay_s=0.01))
    started, chunks, end = await stream(ws, batch=True)
    seqs = [seq for chunk in chunks for seq in range(chunk["seq"] - chunk.get("count", 1) + 1, chunk["seq"] + 1)]
    words = re.findall(r"\S+\s*", SCRIPT)
    assert seqs == list(range(1, len(words) + 1))
    assert "".join(texts(chunks)) == SCRIPT
    assert max(chunk.get("count", 1) for chunk in chunks) > 1
    assert end["type"] == "stream.completed" and end["seq"] == len(words)
    row = await saved(started["session_id"])
    assert (row.script, row.words) == (SCRIPT, len(words))


async def test_whole_script_is_saved_with_usage(
    ws: AppClient, openai_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    """The saved row holds the concatenated chunks (the model's text), the usage and the model."""
    fake_openai.serve(Scenario(deltas=SCRIPT_DELTAS, byte_split=5))
    started, chunks, _ = await stream(ws)
    row = await saved(started["session_id"])
    assert row.script == "".join(texts(chunks)) == SCRIPT
    assert (row.status, row.words, row.usage) == ("completed", len(chunks), FAKE_USAGE)
    assert (row.provider, row.model, row.fallback) == ("openai", "fake-model", False)


async def test_short_retry_after_then_success_completes(
    ws: AppClient, openai_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    """A 429 with a short Retry-After is waited out once; the retry streams the script to completion."""
    fake_openai.serve(Scenario(status=429, retry_after="0.1"), Scenario(text=SCRIPT))
    _, chunks, end = await stream(ws)
    assert end["type"] == "stream.completed"
    assert "".join(texts(chunks)) == SCRIPT
    assert len(fake_openai.requests) == 2


# ---------------------------------------------------------------- failures


@dataclass(frozen=True)
class Failure:
    """One upstream misbehaviour, the code it must end with, and the words sent before it."""

    scenario: Scenario
    code: str
    words: tuple[str, ...] = ()
    knobs: dict[str, Any] = field(default_factory=dict)  # STREAMING overrides this case needs


FAILURES = [
    pytest.param(Failure(Scenario(status=500), "ai_unavailable"), id="500"),
    pytest.param(Failure(Scenario(status=429, retry_after="30"), "ai_rate_limited"), id="429-long-retry-after"),
    pytest.param(Failure(Scenario(status=401), "ai_misconfigured"), id="401"),
    pytest.param(Failure(Scenario(status=404), "ai_misconfigured"), id="404-model"),
    pytest.param(
        Failure(
            Scenario(deltas=DELTAS, stall_after=3),
            "ai_timeout",
            ("one ", "two "),
            {"OPENAI_STREAM_IDLE_TIMEOUT_S": 0.3},
        ),
        id="stall-mid-stream",
    ),
    pytest.param(Failure(Scenario(deltas=DELTAS, drop_after=3), "ai_unavailable", ("one ", "two ")), id="drop"),
    pytest.param(
        Failure(Scenario(deltas=DELTAS, finish_reason=None), "ai_unavailable", ("one ", "two ", "three ", "four ")),
        id="no-finish-reason",
    ),
    pytest.param(
        Failure(Scenario(deltas=DELTAS, malformed_after=3), "ai_unavailable", ("one ", "two ")),
        id="malformed-chunk",
    ),
    pytest.param(
        Failure(Scenario(deltas=DELTAS, finish_reason="content_filter"), "ai_refused", ("one ", "two ", "three ")),
        id="content-filter",
    ),
]


@pytest.mark.parametrize("failure", FAILURES)
async def test_failure_ends_with_code_and_partial_script(
    ws: AppClient, openai_settings: Settings, fake_openai: FakeOpenAI, failure: Failure
) -> None:
    """Each upstream failure ends in stream.failed with its code and last seq; the words sent are saved."""
    openai_settings.STREAMING.update(failure.knobs)
    fake_openai.serve(failure.scenario)
    started, chunks, end = await stream(ws)
    words = list(failure.words)
    assert texts(chunks) == words
    assert (end["type"], end["error"]["code"], end["seq"]) == ("stream.failed", failure.code, len(words))
    assert await ws.nothing()
    row = await saved(started["session_id"])
    assert (row.status, row.error_code, row.script, row.words) == ("failed", failure.code, "".join(words), len(words))


async def test_connection_refused_is_unavailable(ws: AppClient, openai_settings: Settings) -> None:
    """Nothing listening at OPENAI_BASE_URL -> stream.failed ai_unavailable at seq 0, saved as failed."""
    openai_settings.STREAMING["OPENAI_BASE_URL"] = f"http://127.0.0.1:{unused_port()}/v1"
    started, chunks, end = await stream(ws)
    assert (chunks, end["type"], end["error"]["code"], end["seq"]) == ([], "stream.failed", "ai_unavailable", 0)
    row = await saved(started["session_id"])
    assert (row.status, row.error_code, row.script) == ("failed", "ai_unavailable", "")


async def test_misconfigured_message_never_echoes_the_key(
    ws: AppClient, openai_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    """A 401 says which setting to check, and neither the frame nor the row contains the API key."""
    fake_openai.serve(Scenario(status=401))
    started, _, end = await stream(ws)
    assert "OPENAI_API_KEY" in end["error"]["message"]
    assert FAKE_API_KEY not in str(end)
    assert FAKE_API_KEY not in (await saved(started["session_id"])).error_message


async def test_deadline_mid_stream_is_timeout(
    ws: AppClient, openai_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    """A slow model past STREAM_DEADLINE_S -> stream.failed ai_timeout with the words so far saved."""
    openai_settings.STREAMING["STREAM_DEADLINE_S"] = 1.0
    fake_openai.serve(Scenario(deltas=[f"word{n} " for n in range(40)], delay_s=0.1))
    started, chunks, end = await stream(ws)
    assert (end["type"], end["error"]["code"], end["seq"]) == ("stream.failed", "ai_timeout", len(chunks))
    assert 0 < len(chunks) < 39
    assert "deadline" in end["error"]["message"]
    row = await saved(started["session_id"])
    assert (row.status, row.error_code, row.script) == ("failed", "ai_timeout", "".join(texts(chunks)))


# ---------------------------------------------------------------- cancel


async def test_cancel_closes_the_upstream(ws: AppClient, openai_settings: Settings, fake_openai: FakeOpenAI) -> None:
    """cancel mid-stream -> stream.cancelled with the last seq, and the fake server sees the client go away."""
    fake_openai.serve(Scenario(deltas=DELTAS, stall_after=3))
    started = await ws.generate()
    assert texts([await ws.recv(), await ws.recv()]) == ["one ", "two "]
    assert await fake_openai.wait(fake_openai.stalled)
    await ws.send({"type": "cancel", "session_id": started["session_id"]})
    assert await ws.recv() == {"type": "stream.cancelled", "session_id": started["session_id"], "seq": 2}
    assert await fake_openai.wait(fake_openai.disconnected)


# ---------------------------------------------------------------- fallback and provider choice


async def test_fallback_serves_the_mock_when_open_fails(
    ws: AppClient, openai_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    """AI_FALLBACK=mock and a 500 -> stream.started from the mock flagged fallback, then a whole mock script."""
    openai_settings.STREAMING["AI_FALLBACK"] = "mock"
    fake_openai.serve(Scenario(status=500))
    started, chunks, end = await stream(ws)
    assert (started["provider"], started["fallback"]) == ("mock", True)
    assert (end["type"], end["fallback"]) == ("stream.completed", True)
    assert [chunk["seq"] for chunk in chunks] == list(range(1, started["estimated_words"] + 1))
    row = await saved(started["session_id"])
    assert (row.provider, row.fallback, row.script) == ("mock", True, "".join(texts(chunks)))


async def test_fallback_when_stream_fails_before_first_word(
    ws: AppClient, openai_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    """AI_FALLBACK=mock and a stream broken before its first word -> the mock writes it all, completed flagged."""
    openai_settings.STREAMING["AI_FALLBACK"] = "mock"
    fake_openai.serve(Scenario(deltas=DELTAS, malformed_after=0))
    started, chunks, end = await stream(ws)
    assert started["provider"] == "openai"
    assert (end["type"], end["fallback"], end["seq"]) == ("stream.completed", True, started["estimated_words"])
    assert texts(chunks)[0] == "Hook: "  # the mock's script from its first word: nothing of the model's
    row = await saved(started["session_id"])
    assert (row.provider, row.fallback, row.script) == ("mock", True, "".join(texts(chunks)))


async def test_no_fallback_once_a_word_was_sent(
    ws: AppClient, openai_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    """AI_FALLBACK=mock and a failure after words were sent -> stream.failed; no mock words are mixed in."""
    openai_settings.STREAMING["AI_FALLBACK"] = "mock"
    fake_openai.serve(Scenario(deltas=DELTAS, drop_after=3))
    started, chunks, end = await stream(ws)
    assert started["provider"] == "openai"
    assert texts(chunks) == ["one ", "two "]
    assert (end["type"], end["error"]["code"], end["seq"]) == ("stream.failed", "ai_unavailable", 2)
    row = await saved(started["session_id"])
    assert (row.provider, row.fallback, row.script) == ("openai", False, "one two ")


async def test_no_key_uses_the_mock(ws: AppClient, openai_settings: Settings, fake_openai: FakeOpenAI) -> None:
    """Without OPENAI_API_KEY the mock serves (provider "mock") and the OpenAI server is never called."""
    openai_settings.OPENAI_API_KEY = ""
    started, _, end = await stream(ws)
    assert (started["provider"], end["type"]) == ("mock", "stream.completed")
    assert "fallback" not in started
    assert fake_openai.requests == []


async def test_readyz_describes_the_provider_without_calling_it(
    transactional_db: Any, openai_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    """/readyz reports openai, the model and the base URL host, and the fake server records no request."""
    response = await AsyncClient().get("/readyz")
    assert response.status_code == 200
    assert response.json()["provider"] == {
        "name": "openai",
        "model": "fake-model",
        "host": urlsplit(fake_openai.base_url).netloc,
    }
    assert FAKE_API_KEY not in response.content.decode()
    assert fake_openai.requests == []
