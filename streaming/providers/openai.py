"""The OpenAI provider: streaming chat completions from OpenAI or any OpenAI-compatible server (docs/ai.md)."""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import Any, cast
from urllib.parse import urlsplit

import httpx2
import openai
from django.conf import settings
from openai import AsyncOpenAI, AsyncStream
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from streaming.prompts import build_messages
from streaming.protocol import ErrorCode, ScriptRequest
from streaming.providers.base import ProviderError

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# A short pause before retrying a refused connection or a 5xx, so that a blip can pass without holding the
# creator long; OPENAI_MAX_RETRIES bounds how many.
RETRY_BACKOFF_S = 0.5

# One client (and so one connection pool) per event loop and configuration: a pool cannot cross loops, and
# tests change the settings. In production that is one client per process.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str, float], AsyncOpenAI]] = (
    weakref.WeakKeyDictionary()
)


def openai_client() -> AsyncOpenAI:
    """The AsyncOpenAI client for the current settings, created once and reused."""
    key = (settings.OPENAI_API_KEY, _base_url(), float(settings.STREAMING["OPENAI_TIMEOUT_S"]))
    clients = _clients.setdefault(asyncio.get_running_loop(), {})
    client = clients.get(key)
    if client is None:
        # max_retries=0: OpenAIProvider.open() retries itself, because the SDK would also wait out a long
        # Retry-After (up to two minutes) and the creator must hear about a rate limit at once.
        client = AsyncOpenAI(api_key=key[0], base_url=key[1], timeout=key[2], max_retries=0)
        clients[key] = client
    return client


def _base_url() -> str:
    return str(settings.STREAMING["OPENAI_BASE_URL"] or DEFAULT_BASE_URL)


def provider_error(exc: BaseException) -> ProviderError:
    """The one translation of an SDK (or transport) failure to a wire error code; see docs/ai.md."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc)
    if isinstance(exc, openai.APITimeoutError) and not isinstance(exc.__cause__, httpx2.ConnectTimeout):
        return ProviderError(ErrorCode.AI_TIMEOUT, "The AI provider stopped answering in time.")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError(ErrorCode.AI_UNAVAILABLE, "The AI provider cannot be reached.")
    if isinstance(exc, json.JSONDecodeError):
        # The SDK lets a raw JSONDecodeError out of a stream that sent a malformed chunk.
        return ProviderError(ErrorCode.AI_UNAVAILABLE, "The AI provider sent a malformed response.")
    logger.error("Unexpected AI provider failure", exc_info=exc)
    return ProviderError(ErrorCode.AI_UNAVAILABLE, "The AI provider failed unexpectedly.")


def _status_error(exc: openai.APIStatusError) -> ProviderError:
    status = exc.status_code
    if status == 429:
        return ProviderError(
            ErrorCode.AI_RATE_LIMITED,
            "The AI provider is rate limiting requests; try again shortly.",
            retry_after_s=retry_after_s(exc.response.headers),
        )
    if status in {401, 403}:
        return ProviderError(
            ErrorCode.AI_MISCONFIGURED,
            f"The AI provider refused the API key (HTTP {status}): check OPENAI_API_KEY "
            "and that the key may use OPENAI_MODEL.",
        )
    if status == 404:
        return ProviderError(
            ErrorCode.AI_MISCONFIGURED,
            f"The AI provider does not know model {settings.STREAMING['OPENAI_MODEL']!r} (HTTP 404): "
            "check OPENAI_MODEL and OPENAI_BASE_URL.",
        )
    if status < 500:
        logger.error("AI provider rejected the request (HTTP %s): %s", status, exc.message)
    return ProviderError(ErrorCode.AI_UNAVAILABLE, f"The AI provider failed (HTTP {status}).")


def retry_after_s(headers: httpx2.Headers) -> float | None:
    """Seconds the server asked us to wait (retry-after-ms or retry-after in seconds), if it said."""
    for name, divisor in (("retry-after-ms", 1000), ("retry-after", 1)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue  # an HTTP date: too rare to honour; the caller treats it as a long wait
        if seconds >= 0:
            return seconds
    return None


class OpenAIScriptStream:
    """One streaming chat completion: text deltas, usage at the end, every failure a ProviderError."""

    def __init__(self, chunks: AsyncStream[ChatCompletionChunk], idle_timeout_s: float) -> None:
        self._chunks = chunks
        self._idle_timeout_s = idle_timeout_s
        self._finish_reason: str | None = None
        self._done = False
        self.usage: dict[str, Any] = {}

    def __aiter__(self) -> OpenAIScriptStream:
        return self

    async def __anext__(self) -> str:
        try:
            while not self._done:
                # The longest gap between two tokens; the runner owns the whole-stream deadline.
                async with asyncio.timeout(self._idle_timeout_s):
                    chunk = await self._chunks.__anext__()
                text = self._read(chunk)
                if text:
                    return text
        except StopAsyncIteration:
            self._done = True
            if self._finish_reason is None:
                raise ProviderError(
                    ErrorCode.AI_UNAVAILABLE, "The AI provider ended the script early (no finish reason)."
                ) from None
        except ProviderError:
            await self.aclose()
            raise
        except Exception as exc:
            closed_by_caller = self._done  # aclose() from another task broke this read: a stop, not a failure
            await self.aclose()
            if not closed_by_caller and self._finish_reason is None:
                raise self._error(exc) from exc
            if not closed_by_caller:
                # The model had finished; only the usage chunk or [DONE] was lost. The script is whole.
                logger.warning("AI stream broke after its finish reason: %r", exc)
        raise StopAsyncIteration

    def _error(self, exc: Exception) -> ProviderError:
        if isinstance(exc, TimeoutError):  # our idle timeout, not the SDK's (APITimeoutError)
            return ProviderError(
                ErrorCode.AI_TIMEOUT, f"The AI model sent nothing for {self._idle_timeout_s:g} seconds."
            )
        return provider_error(exc)

    def _read(self, chunk: ChatCompletionChunk) -> str:
        if chunk.usage is not None:
            self.usage = {
                "prompt_tokens": chunk.usage.prompt_tokens,
                "completion_tokens": chunk.usage.completion_tokens,
                "total_tokens": chunk.usage.total_tokens,
            }
        if not chunk.choices:
            return ""
        choice = chunk.choices[0]
        if choice.finish_reason == "content_filter":
            raise ProviderError(ErrorCode.AI_REFUSED, "The AI provider refused to write this script.")
        if choice.finish_reason is not None:
            self._finish_reason = choice.finish_reason
        content = choice.delta.content
        if content is not None and not isinstance(content, str):
            raise TypeError(f"chunk content is {type(content).__name__}, not text")
        return content or ""

    async def aclose(self) -> None:
        """Close the upstream HTTP response now: no more tokens are generated or paid for."""
        self._done = True
        await self._chunks.close()


class OpenAIProvider:
    """Streams scripts from OPENAI_BASE_URL (OpenAI by default) with OPENAI_MODEL."""

    name = "openai"
    whole_words = False

    def __init__(self) -> None:
        self.model: str = settings.STREAMING["OPENAI_MODEL"]

    async def open(self, request: ScriptRequest) -> OpenAIScriptStream:
        """Start the completion; retry a refused connection or a 5xx, and wait out one short Retry-After."""
        retries_left = int(settings.STREAMING["OPENAI_MAX_RETRIES"])
        waited_for_rate_limit = False
        while True:
            try:
                chunks = await openai_client().chat.completions.create(
                    model=self.model,
                    messages=cast("list[ChatCompletionMessageParam]", build_messages(request)),
                    stream=True,
                    stream_options={"include_usage": True},
                )
            except Exception as exc:
                error = provider_error(exc)
                if error.code is ErrorCode.AI_RATE_LIMITED and not waited_for_rate_limit:
                    delay = self._rate_limit_wait(error)
                    waited_for_rate_limit = True
                elif retries_left > 0 and _retryable(exc):
                    delay = RETRY_BACKOFF_S
                    retries_left -= 1
                else:
                    delay = None
                if delay is None:
                    raise error from exc
                logger.info("AI provider answered %s; retrying in %.2f s", error.code, delay)
            else:
                return OpenAIScriptStream(chunks, float(settings.STREAMING["OPENAI_STREAM_IDLE_TIMEOUT_S"]))
            await asyncio.sleep(delay)

    @staticmethod
    def _rate_limit_wait(error: ProviderError) -> float | None:
        """The Retry-After worth waiting for before the first word, or None to fail at once."""
        limit = float(settings.STREAMING["OPENAI_MAX_RETRY_AFTER_S"])
        if error.retry_after_s is None or error.retry_after_s > limit:
            return None
        return error.retry_after_s

    def describe(self) -> dict[str, Any]:
        """Name, model and base-URL host (never the key), for /readyz and stream.started."""
        parts = urlsplit(_base_url())
        host = f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname
        return {"name": self.name, "model": self.model, "host": host}


def _retryable(exc: Exception) -> bool:
    """A refused or reset connection or a 5xx may pass in a moment; a timeout already took its time."""
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500
    return isinstance(exc, openai.APIConnectionError) and not isinstance(exc, openai.APITimeoutError)
