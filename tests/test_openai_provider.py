"""The OpenAI provider through the real SDK against the fake OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx2
import pytest
from openai._base_client import AsyncAPIClient
from pytest_django.fixtures import Settings

from streaming.protocol import ErrorCode, Platform, ScriptRequest
from streaming.providers import get_fallback_provider, get_provider
from streaming.providers.base import ProviderError
from streaming.providers.mock import MockProvider
from streaming.providers.openai import OpenAIProvider, OpenAIScriptStream, openai_client, retry_after_s
from streaming.words import WordSplitter
from tests.fake_openai import FakeOpenAI, Scenario, unused_port
from tests.fixtures_openai import FAKE_API_KEY
from tests.test_fail_closed import documented_production_env, manage

pytestmark = pytest.mark.timeout(20)

REQUEST = ScriptRequest(topic="cold brew coffee", platform=Platform.TIKTOK, duration=30)
TEXT = "Stop scrolling: cold brew is easy. Steep it overnight, then enjoy!"
THREE = ["one ", "two ", "three"]


# Every test that reads a stream runs twice: pushed as each read arrives, and read by the loop's read pass
# (a window at a time, as for a stream whose listeners all take multi-word frames). The same text, the same
# failures, the same codes.
READ_PASS = {"on": False}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "openai_settings" in metafunc.fixturenames:
        metafunc.parametrize("read_pass", [False, True], ids=["as-it-comes", "read-pass"], indirect=True)


@pytest.fixture(autouse=True)
def read_pass(request: pytest.FixtureRequest) -> Iterator[bool]:
    READ_PASS["on"] = on = bool(getattr(request, "param", False))
    yield on
    READ_PASS["on"] = False


async def drain(stream: OpenAIScriptStream) -> tuple[str, ProviderError | None]:
    """Everything the stream gave, and the ProviderError that ended it (None when it completed).

    Read as the runner reads it: pushed as it arrives over the lean transport (by the read pass with the
    `read-pass` parameter), iterated over the SDK's own.
    """
    deltas: list[str] = []
    try:
        if stream.push_text is not None:
            await stream.push_text(deltas.append, (lambda: True) if READ_PASS["on"] else None)
        else:
            async for delta in stream:
                deltas.append(delta)
    except ProviderError as exc:
        return "".join(deltas), exc
    return "".join(deltas), None


async def fail(fake: FakeOpenAI, *scenarios: Scenario) -> tuple[str, ProviderError]:
    """Run one generation that must fail, before or during the stream.

    With the read pass, the chunks come 20 ms apart, so the failure finds the socket in the pass.
    """
    if READ_PASS["on"]:
        scenarios = tuple(s if s.one_write or s.delay_s else replace(s, delay_s=0.02) for s in scenarios)
    fake.serve(*scenarios)
    try:
        stream = await OpenAIProvider().open(REQUEST)
    except ProviderError as exc:
        return "", exc
    text, error = await drain(stream)
    assert error is not None, "the stream completed"
    return text, error


async def test_streams_text_and_usage(openai_settings: Settings, fake_openai: FakeOpenAI) -> None:
    """A healthy stream yields the whole text and then the usage of the final chunk."""
    fake_openai.serve(Scenario(text=TEXT))
    stream = await OpenAIProvider().open(REQUEST)
    text, error = await drain(stream)
    assert (text, error) == (TEXT, None)
    assert stream.usage == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


async def test_lean_transport_pushes_sdk_transport_iterates(openai_settings: Settings, fake_openai: FakeOpenAI) -> None:
    """Push mode needs the lean transport's body; over the SDK's own transport the stream is iterated."""
    fake_openai.serve(Scenario(text=TEXT))
    stream = await OpenAIProvider().open(REQUEST)
    lean = openai_settings.STREAMING["OPENAI_HTTP_TRANSPORT"] == "asyncio"
    assert (stream.push_text is not None) == lean
    await stream.aclose()
    assert stream.push_text is None  # closed: nothing more to push


async def test_a_failing_sink_fails_the_push_as_itself_and_closes_upstream(
    openai_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    """The runner's own failure while taking pushed text is not mistaken for the provider's."""
    openai_settings.STREAMING["OPENAI_HTTP_TRANSPORT"] = "asyncio"
    fake_openai.serve(Scenario(deltas=["one ", "two ", "three"], stall_after=2))
    stream = await OpenAIProvider().open(REQUEST)
    assert stream.push_text is not None

    def sink(text: str) -> None:
        raise LookupError(text)

    with pytest.raises(LookupError):
        await stream.push_text(sink, (lambda: True) if READ_PASS["on"] else None)
    await stream.aclose()
    assert await fake_openai.wait(fake_openai.disconnected)


async def test_no_model_is_built_per_chunk(
    openai_settings: Settings, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK sends the request, but the stream is parsed here: the SDK's chunk parsing is never called."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the SDK parsed a response body")

    monkeypatch.setattr(AsyncAPIClient, "_process_response_data", refuse)
    fake_openai.serve(Scenario(text=TEXT))
    assert await drain(await OpenAIProvider().open(REQUEST)) == (TEXT, None)


async def test_request_shape(openai_settings: Settings, fake_openai: FakeOpenAI) -> None:
    """The request streams the configured model with usage, a system and a user prompt, and the key."""
    await drain(await OpenAIProvider().open(REQUEST))
    (request,) = fake_openai.requests
    assert request.path == "/v1/chat/completions"
    assert request.body["model"] == "fake-model"
    assert request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}
    assert [message["role"] for message in request.body["messages"]] == ["system", "user"]
    assert request.headers["authorization"] == f"Bearer {FAKE_API_KEY}"


@pytest.mark.parametrize(
    ("deltas", "byte_split", "crlf"),
    [
        (["Caf", "é cr", "ème ", "咖", "啡 ", "👍", "🏽 ", "fin", "."], None, False),
        (["Café crème 咖啡 👍🏽 fin."], 1, False),
        (["C", "afé crème 咖", "啡 👍🏽 f", "in."], 3, False),
        (["Caf", "é cr", "ème ", "咖", "啡 ", "👍", "🏽 ", "fin", "."], 1, True),
    ],
    ids=["mid-word-and-mid-character-deltas", "one-byte-tcp-writes", "three-byte-tcp-writes", "crlf-one-byte-writes"],
)
async def test_awkward_splits_give_whole_words(
    openai_settings: Settings, fake_openai: FakeOpenAI, deltas: list[str], byte_split: int | None, crlf: bool
) -> None:
    """Deltas split mid-word or mid-character and bodies split mid-UTF-8 byte (or mid-CRLF) give intact words."""
    fake_openai.serve(Scenario(deltas=deltas, byte_split=byte_split, crlf=crlf))
    splitter = WordSplitter()
    words = [word async for delta in await OpenAIProvider().open(REQUEST) for word in splitter.feed(delta)]
    assert [*words, *splitter.flush()] == ["Café ", "crème ", "咖啡 ", "👍🏽 ", "fin."]


@pytest.mark.parametrize(
    ("scenarios", "code"),
    [
        ([Scenario(status=500)], ErrorCode.AI_UNAVAILABLE),
        ([Scenario(status=503)], ErrorCode.AI_UNAVAILABLE),
        ([Scenario(status=429)], ErrorCode.AI_RATE_LIMITED),
        ([Scenario(status=401)], ErrorCode.AI_MISCONFIGURED),
        ([Scenario(status=403)], ErrorCode.AI_MISCONFIGURED),
        ([Scenario(status=404)], ErrorCode.AI_MISCONFIGURED),
        ([Scenario(text=TEXT, drop_after=2)], ErrorCode.AI_UNAVAILABLE),
        ([Scenario(text=TEXT, finish_reason=None)], ErrorCode.AI_UNAVAILABLE),
        ([Scenario(text=TEXT, finish_reason=None, send_done=False)], ErrorCode.AI_UNAVAILABLE),
        ([Scenario(text=TEXT, malformed_after=2)], ErrorCode.AI_UNAVAILABLE),
        ([Scenario(text=TEXT, wrong_shape_after=2)], ErrorCode.AI_UNAVAILABLE),
        ([Scenario(text=TEXT, error_after=2)], ErrorCode.AI_UNAVAILABLE),
        ([Scenario(text=TEXT, finish_reason="content_filter")], ErrorCode.AI_REFUSED),
    ],
    ids=[
        "500",
        "503",
        "429-without-retry-after",
        "401",
        "403",
        "404",
        "reset-mid-stream",
        "no-finish-reason",
        "no-finish-reason-no-done",
        "malformed-chunk",
        "wrong-shape-chunk",
        "error-event-mid-stream",
        "content-filter",
    ],
)
async def test_failure_maps_to_code(
    openai_settings: Settings, fake_openai: FakeOpenAI, scenarios: list[Scenario], code: ErrorCode
) -> None:
    """Each upstream failure ends with a ProviderError carrying its wire code."""
    _, error = await fail(fake_openai, *scenarios)
    assert error.code is code


@pytest.mark.parametrize(
    ("scenario", "text", "code"),
    [
        (
            Scenario(deltas=["one ", "two ", "x"], malformed_after=2, one_write=True),
            "one two ",
            ErrorCode.AI_UNAVAILABLE,
        ),
        (Scenario(deltas=["one ", "two ", "x"], error_after=2, one_write=True), "one two ", ErrorCode.AI_UNAVAILABLE),
        # The filtered chunk's own text is never yielded.
        (
            Scenario(deltas=["one ", "two "], finish_reason="content_filter", one_write=True),
            "one ",
            ErrorCode.AI_REFUSED,
        ),
    ],
    ids=["malformed", "error-event", "content-filter"],
)
async def test_failure_in_the_same_read_comes_after_the_text_before_it(
    openai_settings: Settings, fake_openai: FakeOpenAI, scenario: Scenario, text: str, code: ErrorCode
) -> None:
    """Text and a failure that arrive in one read: the text is yielded first, then the failure ends the stream."""
    got, error = await fail(fake_openai, scenario)
    assert (got, error.code) == (text, code)


async def test_connection_refused_is_unavailable(openai_settings: Settings) -> None:
    """Nothing listening at OPENAI_BASE_URL -> ai_unavailable before any word."""
    openai_settings.STREAMING["OPENAI_BASE_URL"] = f"http://127.0.0.1:{unused_port()}/v1"
    with pytest.raises(ProviderError) as caught:
        await OpenAIProvider().open(REQUEST)
    assert caught.value.code is ErrorCode.AI_UNAVAILABLE


async def test_reset_mid_stream_keeps_the_words_already_sent(
    openai_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    """A connection reset after two chunks fails the stream after exactly those two deltas."""
    text, error = await fail(fake_openai, Scenario(deltas=["one ", "two ", "three"], drop_after=2))
    assert (text, error.code) == ("one two ", ErrorCode.AI_UNAVAILABLE)


@pytest.mark.parametrize("status", [401, 403, 404])
async def test_misconfigured_message_never_echoes_the_key(
    openai_settings: Settings, fake_openai: FakeOpenAI, status: int
) -> None:
    """401/403/404 say which setting to check and never contain the API key."""
    _, error = await fail(fake_openai, Scenario(status=status))
    assert "OPENAI_" in error.message
    assert FAKE_API_KEY not in error.message
    assert FAKE_API_KEY not in str(error.__cause__)


async def test_404_names_the_model_setting(openai_settings: Settings, fake_openai: FakeOpenAI) -> None:
    """A 404 tells the operator to check OPENAI_MODEL and OPENAI_BASE_URL."""
    _, error = await fail(fake_openai, Scenario(status=404))
    assert "OPENAI_MODEL" in error.message
    assert "OPENAI_BASE_URL" in error.message


async def test_short_retry_after_is_honoured_once(openai_settings: Settings, fake_openai: FakeOpenAI) -> None:
    """A 429 with a short Retry-After waits that long, retries once and then streams."""
    fake_openai.serve(Scenario(status=429, retry_after="0.2"), Scenario(text=TEXT))
    started = time.monotonic()
    text, error = await drain(await OpenAIProvider().open(REQUEST))
    assert (text, error) == (TEXT, None)
    assert len(fake_openai.requests) == 2
    assert time.monotonic() - started >= 0.2


async def test_rate_limit_is_not_retried_twice(openai_settings: Settings, fake_openai: FakeOpenAI) -> None:
    """A second 429 after the one honoured wait fails with ai_rate_limited: never a loop."""
    _, error = await fail(fake_openai, Scenario(status=429, retry_after="0.05"))
    assert error.code is ErrorCode.AI_RATE_LIMITED
    assert len(fake_openai.requests) == 2


async def test_long_retry_after_fails_at_once(openai_settings: Settings, fake_openai: FakeOpenAI) -> None:
    """A Retry-After above OPENAI_MAX_RETRY_AFTER_S fails with ai_rate_limited without waiting."""
    started = time.monotonic()
    _, error = await fail(fake_openai, Scenario(status=429, retry_after="30"))
    assert (error.code, error.retry_after_s) == (ErrorCode.AI_RATE_LIMITED, 30.0)
    assert len(fake_openai.requests) == 1
    assert time.monotonic() - started < 3


async def test_5xx_is_retried_within_max_retries(openai_settings: Settings, fake_openai: FakeOpenAI) -> None:
    """With OPENAI_MAX_RETRIES=1 a 500 followed by a healthy answer streams the script."""
    openai_settings.STREAMING["OPENAI_MAX_RETRIES"] = 1
    fake_openai.serve(Scenario(status=500), Scenario(text=TEXT))
    text, error = await drain(await OpenAIProvider().open(REQUEST))
    assert (text, error, len(fake_openai.requests)) == (TEXT, None, 2)


async def test_idle_stall_times_out_and_closes_upstream(openai_settings: Settings, fake_openai: FakeOpenAI) -> None:
    """No token for OPENAI_STREAM_IDLE_TIMEOUT_S -> ai_timeout, and the upstream connection is closed."""
    openai_settings.STREAMING["OPENAI_STREAM_IDLE_TIMEOUT_S"] = 0.3
    text, error = await fail(fake_openai, Scenario(deltas=["one ", "two ", "three"], stall_after=1))
    assert (text, error.code) == ("one ", ErrorCode.AI_TIMEOUT)
    assert await fake_openai.wait(fake_openai.disconnected)


async def test_read_timeout_is_ai_timeout(openai_settings: Settings, fake_openai: FakeOpenAI) -> None:
    """A read stall past OPENAI_TIMEOUT_S (the SDK's own timeout) is ai_timeout too."""
    openai_settings.STREAMING["OPENAI_TIMEOUT_S"] = 0.3
    _, error = await fail(fake_openai, Scenario(text=TEXT, stall_after=1))
    assert error.code is ErrorCode.AI_TIMEOUT


async def test_aclose_mid_stream_closes_upstream(openai_settings: Settings, fake_openai: FakeOpenAI) -> None:
    """aclose() after the first delta makes the server see the client go away."""
    fake_openai.serve(Scenario(deltas=["one ", "two ", "three"], stall_after=1))
    stream = await OpenAIProvider().open(REQUEST)
    assert await anext(aiter(stream)) == "one "
    await stream.aclose()
    assert await fake_openai.wait(fake_openai.disconnected)
    assert [delta async for delta in stream] == []


async def test_cancelled_reader_then_aclose_closes_upstream(openai_settings: Settings, fake_openai: FakeOpenAI) -> None:
    """A reader cancelled while waiting for a token (runner cancel/deadline), then aclose(), frees the upstream."""
    fake_openai.serve(Scenario(deltas=["one ", "two "], stall_after=1))
    stream = await OpenAIProvider().open(REQUEST)
    reader = asyncio.create_task(drain(stream))
    assert await fake_openai.wait(fake_openai.stalled)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    await stream.aclose()
    assert await fake_openai.wait(fake_openai.disconnected)


async def test_aclose_from_another_task_ends_the_reader_quietly(
    openai_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    """aclose() while another task waits for a token ends that reader's iteration without an error."""
    fake_openai.serve(Scenario(deltas=["one ", "two "], stall_after=1))
    stream = await OpenAIProvider().open(REQUEST)
    reader = asyncio.create_task(drain(stream))
    assert await fake_openai.wait(fake_openai.stalled)
    await stream.aclose()
    _, error = await asyncio.wait_for(reader, timeout=5)
    assert error is None
    assert await fake_openai.wait(fake_openai.disconnected)


async def test_break_after_finish_reason_completes(openai_settings: Settings, fake_openai: FakeOpenAI) -> None:
    """A connection lost after the finish reason (before usage) still completes the script, without usage."""
    stream_text = ["all ", "done."]
    fake_openai.serve(Scenario(deltas=stream_text, drop_after=len(stream_text)))
    stream = await OpenAIProvider().open(REQUEST)
    assert await drain(stream) == ("all done.", None)
    assert stream.usage == {}


async def test_stall_after_finish_reason_completes(openai_settings: Settings, fake_openai: FakeOpenAI) -> None:
    """A stall after the finish reason (usage never comes) still completes the script once the idle timeout ends."""
    openai_settings.STREAMING["OPENAI_STREAM_IDLE_TIMEOUT_S"] = 0.3
    fake_openai.serve(Scenario(deltas=["all ", "done."], stall_after=2))
    assert await drain(await OpenAIProvider().open(REQUEST)) == ("all done.", None)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
        ({"retry-after": "-1"}, None),
        ({}, None),
    ],
)
def test_retry_after_parsing(headers: dict[str, str], seconds: float | None) -> None:
    """Retry-After is read in seconds (or retry-after-ms); a date or a negative value counts as no hint."""
    assert retry_after_s(httpx2.Headers(headers)) == seconds


async def test_client_is_reused(openai_settings: Settings) -> None:
    """One AsyncOpenAI client serves every generation with the same settings."""
    assert openai_client() is openai_client()


async def test_describe_shows_host_not_key(openai_settings: Settings, fake_openai: FakeOpenAI) -> None:
    """describe() names the provider, model and base URL host, never the key."""
    description = OpenAIProvider().describe()
    port = fake_openai.base_url.split(":")[2].split("/")[0]
    assert description == {"name": "openai", "model": "fake-model", "host": f"127.0.0.1:{port}"}
    assert FAKE_API_KEY not in repr(description)


@pytest.mark.parametrize(
    ("api_key", "fallback", "provider", "fallback_provider"),
    [
        ("", "", MockProvider, None),
        ("sk-x", "", OpenAIProvider, None),
        ("sk-x", "mock", OpenAIProvider, MockProvider),
        ("", "mock", MockProvider, MockProvider),
    ],
)
def test_provider_selection(
    settings: Settings, api_key: str, fallback: str, provider: type[Any], fallback_provider: type[Any] | None
) -> None:
    """OpenAI with a key, the mock without; the mock as fallback only when AI_FALLBACK=mock."""
    settings.OPENAI_API_KEY = api_key
    settings.STREAMING = {**settings.STREAMING, "AI_FALLBACK": fallback}
    assert type(get_provider()) is provider
    chosen = get_fallback_provider()
    assert (type(chosen) if chosen else None) is fallback_provider


@pytest.mark.parametrize(("value", "starts"), [("asyncio", True), ("httpx", True), ("aiohttp", False)])
def test_http_transport_setting_is_checked_at_start(value: str, starts: bool) -> None:
    """OPENAI_HTTP_TRANSPORT is asyncio or httpx; anything else stops the start with a message naming it."""
    result = manage(["check"], {**documented_production_env(), "OPENAI_HTTP_TRANSPORT": value})
    assert (result.returncode == 0) is starts, result.stderr[-2000:]
    if not starts:
        assert "OPENAI_HTTP_TRANSPORT='aiohttp': Input should be 'asyncio' or 'httpx'" in result.stderr
