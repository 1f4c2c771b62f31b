"""The OpenAI provider: streaming chat completions from OpenAI or any OpenAI-compatible server (docs/ai.md).

The official SDK builds, authenticates, sends and retries the request and maps HTTP status errors; the stream's
body is read through its raw-response interface and parsed here (sse.py, orjson), not into a model per chunk.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import urllib.request
import weakref
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
import openai
import orjson
from django.conf import settings
from openai import AsyncOpenAI, DefaultAsyncHttpx2Client

from streaming.prompts import build_messages
from streaming.protocol import ErrorCode, ScriptRequest
from streaming.providers.base import ProviderError
from streaming.providers.http1 import PUSH_BODY, Body, Http1Transport
from streaming.providers.idle import IdleTimeout, IdleTimer
from streaming.providers.sse import SSEDecoder, SSEError

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# A short pause before retrying a refused connection or a 5xx, so that a blip can pass without holding the
# creator long; OPENAI_MAX_RETRIES bounds how many.
RETRY_BACKOFF_S = 0.5
USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


# push_text(sink, in_pass=None): `sink` gets the text of each read; while `in_pass()` answers True (asked after
# each read) the body is read by the loop's read pass, a window at a time (read_pass.py).
PushText = Callable[..., Awaitable[None]]


class MalformedChunk(ValueError):
    """A chunk that is JSON but not shaped like a chat-completion chunk."""


# One client (and so one connection pool) per event loop and configuration: a pool cannot cross loops, and
# tests change the settings. In production that is one client per process.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str, float, str], AsyncOpenAI]] = (
    weakref.WeakKeyDictionary()
)


def openai_client() -> AsyncOpenAI:
    """The AsyncOpenAI client for the current settings, created once and reused."""
    key = (
        settings.OPENAI_API_KEY,
        _base_url(),
        float(settings.STREAMING["OPENAI_TIMEOUT_S"]),
        str(settings.STREAMING["OPENAI_HTTP_TRANSPORT"]),
    )
    clients = _clients.setdefault(asyncio.get_running_loop(), {})
    client = clients.get(key)
    if client is None:
        # max_retries=0: OpenAIProvider.open() retries itself, because the SDK would also wait out a long
        # Retry-After (up to two minutes) and the creator must hear about a rate limit at once.
        client = AsyncOpenAI(
            api_key=key[0], base_url=key[1], timeout=key[2], max_retries=0, http_client=_http_client(key[3])
        )
        clients[key] = client
    return client


def _http_client(transport: str) -> httpx2.AsyncClient:
    """The SDK's httpx2 client with the SDK's defaults, over the lean transport unless told or proxied otherwise."""
    if transport == "asyncio" and not _proxied():
        return DefaultAsyncHttpx2Client(transport=Http1Transport())
    # No cap on connections (the SDK's is 1,000): a stream holds one for its whole length, and the product
    # bounds its streams itself.
    return DefaultAsyncHttpx2Client(limits=httpx2.Limits(max_connections=None, max_keepalive_connections=100))


def _proxied() -> bool:
    """An HTTP(S)_PROXY or ALL_PROXY in the environment: httpx2 honours it, the lean transport does not."""
    return bool({"http", "https", "all"} & set(urllib.request.getproxies()))


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
    if isinstance(exc, (json.JSONDecodeError, SSEError, MalformedChunk)):  # orjson's error is a JSONDecodeError
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
    """One streaming chat completion, read as raw SSE bytes: text deltas, usage at the end, failures as ProviderError.

    The SDK would build a pydantic model per chunk (and a str and an object per SSE line before that); at 40
    chunks a second per stream that was most of the server's CPU. Here each event is one `orjson.loads` and a
    few dict lookups, and the events that arrived together come out as one delta.
    """

    def __init__(self, response: httpx2.Response, idle_timeout_s: float) -> None:
        self._response = response
        self._body = response.aiter_bytes()
        self._events = SSEDecoder()
        # The longest gap between two events (the first included); the runner owns the whole-stream deadline.
        self._idle = IdleTimer(idle_timeout_s)
        self._finish_reason: str | None = None
        self._done = False  # the body ended, or [DONE] came
        self._closed = False  # aclose() was called: nothing more is read
        self._reading = False
        self._deferred: Exception | None = None  # a failure that came in the same read as text before it
        self._pushing: asyncio.Future[None] | None = None  # push mode: resolves when the stream ends
        self._pushed_body: Body | None = None  # push mode: the body being pushed
        self.usage: dict[str, Any] = {}

    def __aiter__(self) -> OpenAIScriptStream:
        return self

    async def __anext__(self) -> str:
        if self._closed:
            raise StopAsyncIteration
        try:
            self._raise_deferred()
            while not self._done:
                text = self._read(await self._receive())
                if text:
                    return text
        except Exception as exc:
            await self._end_on(exc, closed_by_caller=self._closed)
            raise StopAsyncIteration from None
        await self._end()
        raise StopAsyncIteration

    async def _end(self) -> None:
        """The body ended or [DONE] came: close the upstream; without a finish reason the script was cut short."""
        await self.aclose()
        if self._finish_reason is None:
            raise ProviderError(ErrorCode.AI_UNAVAILABLE, "The AI provider ended the script early (no finish reason).")

    async def _end_on(self, exc: Exception, *, closed_by_caller: bool) -> None:
        """The read failed: close the upstream and raise what the runner should see, or return when the script
        is whole anyway (aclose() from another task broke the read, or only the usage chunk or [DONE] was lost).
        """
        await self.aclose()
        if isinstance(exc, ProviderError):
            raise exc
        if not closed_by_caller and self._finish_reason is None:
            raise self._error(exc) from exc
        if not closed_by_caller:
            # The model had finished; only the usage chunk or [DONE] was lost. The script is whole.
            logger.warning("AI stream broke after its finish reason: %r", exc)

    def _raise_deferred(self) -> None:
        if self._deferred is not None:
            deferred, self._deferred = self._deferred, None
            raise deferred

    async def _receive(self) -> list[bytes]:
        """The data of the events in the next bytes of the body; none once it ended."""
        task = asyncio.current_task()
        assert task is not None
        self._idle.waiting(task)
        self._reading = True
        try:
            data = await anext(self._body)
        except StopAsyncIteration:
            self._done = True
            return []
        except asyncio.CancelledError:
            if self._idle.expired(task):
                raise IdleTimeout from None
            raise
        except Exception as exc:
            mapped = self._transport_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        finally:
            self._idle.done()
            self._reading = False
        return self._events.feed(data)

    def _transport_error(self, exc: Exception) -> Exception:
        """A failure of the body's transport as the SDK's own stream raises it (caused by `exc`); provider_error()
        maps those."""
        mapped: Exception
        if isinstance(exc, httpx2.TimeoutException):
            mapped = openai.APITimeoutError(request=self._response.request)
        elif isinstance(exc, (httpx2.RequestError, OSError, anyio.EndOfStream)):
            mapped = openai.APIConnectionError(request=self._response.request)
        else:
            return exc
        mapped.__cause__ = exc
        return mapped

    @property
    def push_text(self) -> PushText | None:
        """Push mode, when the lean transport carries the body (else None: iterate the stream instead)."""
        body = self._response.extensions.get(PUSH_BODY)
        if not isinstance(body, Body) or self._closed:
            return None
        return lambda sink, in_pass=None: self._push_text(body, sink, in_pass)

    @property
    def read_by_pass(self) -> bool:
        """Whether the text being pushed now was read by the loop's read pass: it waited up to one multi-word
        window already (push_text's `in_pass`). Asked once per read: the body being pushed is kept for it."""
        body = self._pushed_body
        return body is not None and body.read_by_pass

    async def _push_text(
        self, body: Body, sink: Callable[[str], None], in_pass: Callable[[], bool] | None = None
    ) -> None:
        """Hand the text of each read to `sink` as its bytes arrive, parsed in the transport's protocol callback,
        until the stream ends; then return, or raise what ended it, exactly as iterating would.

        Iterating costs a future, a task step and five generator resumes per read: the provider alone went from
        42.5-48.0 to 34.2-34.4 µs of CPU per chunk at 1,000 streams (bench.provider_direct, docs/ai.md).
        """
        task = asyncio.current_task()
        assert task is not None
        push = _TextPush(self, sink, task.get_loop().create_future())
        self._pushing = push.ended
        self._pushed_body = body
        # The reads run in the socket's callback, whose context is that of whoever opened the connection (maybe
        # another generation, for a kept-alive one): they run in this generation's, for its log lines and for
        # what the sink schedules.
        context = contextvars.copy_context()
        self._idle.waiting(task)
        self._reading = True
        try:
            body.listen(lambda data, error: context.run(push, data, error), in_pass)
            await push.ended
        except asyncio.CancelledError:
            if self._idle.expired(task):
                await self._end_on(IdleTimeout(), closed_by_caller=self._closed)
                return
            raise
        except Exception as exc:
            if exc is push.sink_failed:
                raise
            await self._end_on(exc, closed_by_caller=self._closed)
            return
        finally:
            body.listen(None)
            self._pushing = None  # nobody waits for it any more: aclose() must not fail it unread
            self._pushed_body = None
            self._idle.done()
            self._reading = False
        if self._closed:
            return  # aclose() from another task came first: a stop, as when iterating
        await self._end()

    def _take(self, data: bytes | None) -> str:
        """The text of one read of push mode (None: the body ended); raises what ends the stream."""
        if data is None:
            self._done = True
            return ""
        self._idle.touch()
        return self._read(self._events.feed(data))

    def _read(self, events: list[bytes]) -> str:
        """The text of these events; a failure after some text is raised at the next read, after that text."""
        texts: list[str] = []
        for data in events:
            try:
                text = self._event_text(data)
            except Exception as exc:
                if not texts:
                    raise
                self._deferred = exc
                break
            if text:
                texts.append(text)
            if self._done:
                break
        return "".join(texts)

    def _event_text(self, data: bytes) -> str:
        """One event's text; notes [DONE], the finish reason and usage; raises on content_filter or an error."""
        if data.startswith(b"[DONE]"):
            self._done = True
            return ""
        chunk = orjson.loads(data)
        try:
            return self._chunk_text(chunk)
        except (AttributeError, KeyError, IndexError, TypeError) as exc:
            raise MalformedChunk(f"unexpected chunk shape: {type(exc).__name__}") from exc

    def _chunk_text(self, chunk: dict[str, Any]) -> str:
        if chunk.get("error"):
            error = chunk["error"]
            logger.warning("AI provider failed mid-stream: type=%s code=%s", error.get("type"), error.get("code"))
            raise ProviderError(ErrorCode.AI_UNAVAILABLE, "The AI provider failed while writing the script.")
        usage = chunk.get("usage")
        if usage:
            self.usage = {key: usage.get(key) for key in USAGE_KEYS}
        choices = chunk.get("choices")
        if not choices:
            return ""
        choice = choices[0]
        finish_reason = choice.get("finish_reason")
        if finish_reason == "content_filter":
            raise ProviderError(ErrorCode.AI_REFUSED, "The AI provider refused to write this script.")
        if finish_reason is not None:
            self._finish_reason = finish_reason
        content = (choice.get("delta") or {}).get("content")
        if content is not None and not isinstance(content, str):
            raise TypeError(f"chunk content is {type(content).__name__}, not text")
        return content or ""

    def _error(self, exc: Exception) -> ProviderError:
        if isinstance(exc, IdleTimeout):
            return ProviderError(ErrorCode.AI_TIMEOUT, f"The AI model sent nothing for {self._idle.limit_s:g} seconds.")
        return provider_error(exc)

    async def aclose(self) -> None:
        """Close the upstream HTTP response now: no more tokens are generated or paid for."""
        self._closed = True
        self._idle.stop()
        if self._pushing is not None and not self._pushing.done():  # a push in another task ends quietly
            self._pushing.set_exception(httpx2.StreamClosed())
        await self._response.aclose()
        if not self._reading:  # a reader in another task ends it with the error the close gives it
            await self._body.aclose()


class _TextPush:
    """What the transport calls with each read of one push_text (or its end or failure)."""

    __slots__ = ("ended", "sink", "sink_failed", "stream")

    def __init__(self, stream: OpenAIScriptStream, sink: Callable[[str], None], ended: asyncio.Future[None]) -> None:
        self.stream = stream
        self.sink = sink
        self.ended = ended
        self.sink_failed: Exception | None = None

    def __call__(self, data: bytes | None, error: Exception | None) -> None:
        ended, stream = self.ended, self.stream
        if ended.done():
            return
        if error is not None:
            ended.set_exception(stream._transport_error(error))
            return
        try:
            text = stream._take(data)
            if text:
                try:
                    self.sink(text)
                except Exception as exc:
                    self.sink_failed = exc  # the runner's own failure, not the provider's: raised as it is
                    raise
            stream._raise_deferred()  # a failure that came after that text in the same read
        except Exception as exc:
            if not ended.done():
                ended.set_exception(exc)
            return
        if stream._done and not ended.done():
            ended.set_result(None)


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
                response = await self._post(request)
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
                idle_timeout_s = float(settings.STREAMING["OPENAI_STREAM_IDLE_TIMEOUT_S"])
                return OpenAIScriptStream(response, idle_timeout_s)
            await asyncio.sleep(delay)

    async def _post(self, request: ScriptRequest) -> httpx2.Response:
        """The streaming request, through the SDK's client: its base URL, auth headers, timeouts and status errors
        (raised as APIStatusError and its kinds, as from `create`); the body is left unread for us.

        `client.post(..., cast_to=httpx2.Response)` is the SDK's documented way to send a request it has no
        method for. `chat.completions.create` would also run the body through its TypedDict transform
        (`_async_transform_recursive`, ~40 % of a request's CPU under cProfile), which changes nothing in a body
        of plain strings like this one.
        """
        body: dict[str, Any] = {
            "model": self.model,
            "messages": build_messages(request),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        streamed: bool = True  # the body is not read before the response is returned
        response = await openai_client().post(
            "/chat/completions", cast_to=httpx2.Response, body=body, stream=streamed, stream_cls=openai.AsyncStream[Any]
        )
        assert isinstance(response, httpx2.Response)  # cast_to=httpx2.Response: the SDK hands it back as it came
        return response

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
