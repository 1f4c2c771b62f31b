"""The lean HTTP/1.1 transport under the real SDK: keep-alive, TLS, and what happens to a used connection."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings

from bench.provider import self_signed
from bench.upstream import Connection, Upstream
from creatornexus import logcontext
from streaming.protocol import ErrorCode, Platform, ScriptRequest
from streaming.providers import http1
from streaming.providers.base import ProviderError
from streaming.providers.http1_parser import ResponseParser
from streaming.providers.openai import OpenAIProvider, OpenAIScriptStream

pytestmark = pytest.mark.timeout(20)

REQUEST = ScriptRequest(topic="cold brew coffee", platform=Platform.TIKTOK, duration=30)
WORDS = 5


@dataclass
class KeepAliveServer:
    """bench.upstream in this event loop: an OpenAI-compatible server that keeps its connections open."""

    upstream: Upstream
    base_url: str
    connections: list[Connection] = field(default_factory=list)


async def serve(
    tls: ssl.SSLContext | None = None, delay_s: float = 0.002
) -> tuple[KeepAliveServer, asyncio.Server, asyncio.Task[None]]:
    upstream = Upstream(WORDS, delay_s)
    connections: list[Connection] = []

    def accept() -> Connection:
        connections.append(Connection(upstream))
        return connections[-1]

    server = await asyncio.get_running_loop().create_server(accept, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    scheme, host = ("https", "localhost") if tls else ("http", "127.0.0.1")
    pacer = asyncio.create_task(upstream.pace())
    return KeepAliveServer(upstream, f"{scheme}://{host}:{port}/v1", connections), server, pacer


@pytest.fixture
async def keepalive(settings: Settings) -> AsyncIterator[KeepAliveServer]:
    """The server, and settings that point the OpenAI provider (lean transport) at it."""
    fake, server, pacer = await serve()
    use(settings, fake.base_url)
    yield fake
    pacer.cancel()
    server.close()


def use(settings: Settings, base_url: str) -> None:
    settings.OPENAI_API_KEY = "sk-test"
    settings.STREAMING = {
        **settings.STREAMING,
        "OPENAI_BASE_URL": base_url,
        "OPENAI_MAX_RETRIES": 0,
        "OPENAI_TIMEOUT_S": 5.0,
        "OPENAI_STREAM_IDLE_TIMEOUT_S": 5.0,
        "OPENAI_HTTP_TRANSPORT": "asyncio",
    }


async def script() -> str:
    stream = await OpenAIProvider().open(REQUEST)
    return "".join([delta async for delta in stream])


async def pushed() -> str:
    """A script read as the runner reads it over this transport: pushed as its bytes arrive."""
    stream = await OpenAIProvider().open(REQUEST)
    assert isinstance(stream, OpenAIScriptStream) and stream.push_text is not None
    deltas: list[str] = []
    await stream.push_text(deltas.append)
    return "".join(deltas)


@pytest.mark.parametrize("read", [script, pushed], ids=["iterated", "pushed"])
async def test_connections_are_kept_alive(keepalive: KeepAliveServer, read: Callable[[], Awaitable[str]]) -> None:
    """Three scripts in a row travel over one connection."""
    texts = [await read() for _ in range(3)]
    assert len(set(texts)) == 1 and len(texts[0].split()) == WORDS
    assert (keepalive.upstream.completed, len(keepalive.connections)) == (3, 1)


async def test_pushed_text_is_taken_in_its_own_generations_context(keepalive: KeepAliveServer) -> None:
    """A kept-alive connection's reads run in the callback of the generation that opened it; pushed text is
    taken in the context of the generation reading now (its log lines and what it schedules name it)."""

    async def generation(session: str) -> set[str | None]:
        logcontext.bind_session(session)
        stream = await OpenAIProvider().open(REQUEST)
        assert isinstance(stream, OpenAIScriptStream) and stream.push_text is not None
        seen: set[str | None] = set()
        await stream.push_text(lambda _text: seen.add(logcontext.session_id.get()))
        return seen

    first = await asyncio.create_task(generation("first"))
    second = await asyncio.create_task(generation("second"))
    assert (first, second, len(keepalive.connections)) == ({"first"}, {"second"}, 1)


async def test_a_body_that_came_whole_is_pushed_whole_whatever_follows() -> None:
    """The whole response arrived, then the server reset the connection, all before anyone listened: the
    listener gets the body and its end, not the reset (as a reader would)."""
    connection = http1.Connection(asyncio.get_running_loop())
    connection.parser = ResponseParser(b"POST")  # a request was sent (no socket here: the parts without I/O)
    response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    connection.get_buffer(-1)[: len(response)] = response
    connection.buffer_updated(len(response))
    connection.connection_lost(ConnectionResetError())
    got: list[tuple[bytes | None, Exception | None]] = []
    connection.listen(lambda data, error: got.append((data, error)))
    assert got == [(b"hello", None), (None, None)]


class PausableTransport(asyncio.Transport):
    """Records whether its protocol wants reads (the parts of a socket transport the parking touches)."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return False


async def parked_connection() -> tuple[http1.Connection, PausableTransport]:
    """A connection whose response head the SDK took, then the first bytes of the body came."""
    connection = http1.Connection(asyncio.get_running_loop())
    transport = PausableTransport()
    connection.connection_made(transport)
    connection.parser = ResponseParser(b"POST")  # a request was sent
    head = asyncio.ensure_future(connection.response_head())
    await asyncio.sleep(0)  # the SDK waits for the head
    feed(connection, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert (await asyncio.wait_for(head, 1))[0] == 200
    assert transport.reading is True  # until the head is taken (a request may still be being written)
    feed(connection, b"5\r\nhello\r\n")
    return connection, transport


def feed(connection: http1.Connection, data: bytes) -> None:
    connection.get_buffer(-1)[: len(data)] = data
    connection.buffer_updated(len(data))


async def test_a_body_nobody_reads_yet_waits_in_the_socket() -> None:
    """Between the response's head and its reader (the SDK's handling, the stream's announcement: seconds under
    a burst of starts) the body is not read at all; listening reads on, and gets what came first."""
    connection, transport = await parked_connection()
    assert transport.reading is False
    got: list[tuple[bytes | None, Exception | None]] = []
    connection.listen(lambda data, error: got.append((data, error)))
    assert transport.reading is True and got == [(b"hello", None)]
    feed(connection, b"6\r\n world\r\n")
    assert transport.reading is True and got[-1] == (b" world", None)
    feed(connection, b"0\r\n\r\n")
    assert got[-1] == (None, None)


async def test_an_iterated_body_is_read_on_once_asked_for() -> None:
    """Iterating: the first read of the body reads on, and the socket is not paused again between reads."""
    connection, transport = await parked_connection()
    assert await connection.body_chunk() == b"hello"
    reader = asyncio.ensure_future(connection.body_chunk())
    await asyncio.sleep(0)  # the reader now waits for bytes
    assert transport.reading is True
    feed(connection, b"6\r\n world\r\n")
    feed(connection, b"1\r\n!\r\n")  # nobody waits at this moment: still read, not parked
    assert transport.reading is True
    assert await asyncio.wait_for(reader, 1) == b" world!"


async def test_a_parked_connection_reads_again_when_it_goes_idle() -> None:
    """A connection back in the pool reads, so that it sees its server close it."""
    connection, transport = await parked_connection()
    connection.reset()
    assert transport.reading is True


async def test_a_connection_the_server_closed_is_not_reused(keepalive: KeepAliveServer) -> None:
    """The server closes the idle connection: the next script streams whole on a new one.

    Whether the client saw the close before sending (the connection is skipped) or only after (nothing came
    back: the request goes once more on a new connection), the creator sees no difference.
    """
    await script()
    (first,) = keepalive.connections
    assert first.transport is not None
    first.transport.close()
    assert len((await script()).split()) == WORDS
    assert len(keepalive.connections) == 2


async def test_a_stream_closed_early_closes_its_connection(keepalive: KeepAliveServer) -> None:
    """aclose() mid-stream drops the connection (the server sees it go) instead of keeping it for later."""
    stream = await OpenAIProvider().open(REQUEST)
    assert isinstance(stream, OpenAIScriptStream)
    assert await anext(aiter(stream))
    await stream.aclose()
    async with asyncio.timeout(5):  # the server's side notices the close on one of its next loop turns
        while not keepalive.connections[0].closed:
            await asyncio.sleep(0.01)
    assert len((await script()).split()) == WORDS
    assert len(keepalive.connections) == 2


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost (openssl, as Debian has it), as the provider bench makes one."""
    return self_signed(tmp_path_factory.mktemp("tls"))


async def test_tls_with_the_sdks_certificate_settings(
    settings: Settings, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over TLS the transport verifies the server as the SDK would (SSL_CERT_FILE here) and streams whole."""
    cert, key = certificate
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    fake, server, pacer = await serve(tls=server_side)
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        use(settings, fake.base_url)
        assert len((await script()).split()) == WORDS
    finally:
        pacer.cancel()
        server.close()


async def read_in_pass(in_pass: Callable[[], bool]) -> tuple[str, list[bool]]:
    """A script pushed with `in_pass`, and for each read whether the read pass had read it."""
    stream = await OpenAIProvider().open(REQUEST)
    assert isinstance(stream, OpenAIScriptStream) and stream.push_text is not None
    deltas: list[str] = []
    by_pass: list[bool] = []

    def take(text: str) -> None:
        deltas.append(text)
        by_pass.append(stream.read_by_pass)

    await stream.push_text(take, in_pass)
    return "".join(deltas), by_pass


@pytest.fixture
async def slow_keepalive(settings: Settings) -> AsyncIterator[KeepAliveServer]:
    """The keep-alive server at a word every 20 ms: a body spans several read-pass windows."""
    fake, server, pacer = await serve(delay_s=0.02)
    use(settings, fake.base_url)
    yield fake
    pacer.cancel()
    server.close()


async def test_a_body_read_by_the_read_pass_is_whole_and_its_connection_reused(
    slow_keepalive: KeepAliveServer,
) -> None:
    """Read a window at a time by the loop's read pass: the same text, and the connection goes back to the
    loop at the body's end, kept alive for the next script."""
    for _ in range(2):
        text, by_pass = await read_in_pass(lambda: True)
        assert len(text.split()) == WORDS
        assert True in by_pass
    assert (slow_keepalive.upstream.completed, len(slow_keepalive.connections)) == (2, 1)
    assert len((await script()).split()) == WORDS  # read by the loop again, on the same connection
    assert len(slow_keepalive.connections) == 1


async def test_a_body_leaves_the_read_pass_when_asked_mid_stream(slow_keepalive: KeepAliveServer) -> None:
    """A one-word listener joins mid-stream (in_pass turns False): the rest is read as it comes, whole."""
    answers = iter([True, True])
    text, by_pass = await read_in_pass(lambda: next(answers, False))
    assert len(text.split()) == WORDS
    assert True in by_pass and by_pass[-1] is False
    assert by_pass == sorted(by_pass, reverse=True)  # in the pass, then out of it for good


@pytest.fixture
async def slow_tls_keepalive(
    settings: Settings, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[KeepAliveServer]:
    """The keep-alive server over TLS at a word every 20 ms, its self-signed certificate trusted by the SDK."""
    cert, key = certificate
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    fake, server, pacer = await serve(tls=server_side, delay_s=0.02)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    use(settings, fake.base_url)
    yield fake
    pacer.cancel()
    server.close()


async def test_tls_bodies_are_read_by_the_read_pass_too(slow_tls_keepalive: KeepAliveServer) -> None:
    """Over TLS the pass reads the raw socket into asyncio's TLS layer: the same text, and the connection goes
    back to the loop kept alive (the next script, read by the loop, decrypts on from where the pass left)."""
    for _ in range(2):
        text, by_pass = await read_in_pass(lambda: True)
        assert len(text.split()) == WORDS and True in by_pass
    assert len((await script()).split()) == WORDS
    assert (slow_tls_keepalive.upstream.completed, len(slow_tls_keepalive.connections)) == (3, 1)


async def test_over_tls_a_body_nobody_reads_yet_waits_in_the_raw_socket(slow_tls_keepalive: KeepAliveServer) -> None:
    """Over asyncio's TLS the parked body's raw socket stops being read (pausing the TLS transport alone only
    stops decrypting); listening reads it all, whole, and the connection is kept alive."""
    stream = await OpenAIProvider().open(REQUEST)
    assert isinstance(stream, OpenAIScriptStream) and stream.push_text is not None
    connection = stream._response.extensions[http1.PUSH_BODY]._connection
    parked = asyncio.Event()
    park = connection._park

    def park_and_tell() -> None:  # the first body bytes after the head was taken park it
        park()
        if connection._parked is not None:
            parked.set()

    connection._park = park_and_tell
    if connection._parked is None:
        await asyncio.wait_for(parked.wait(), 5)
    raw = connection._parked
    assert raw is not connection.transport and raw.is_reading() is False  # the socket under the TLS layer
    deltas: list[str] = []
    await stream.push_text(deltas.append, lambda: True)
    assert len("".join(deltas).split()) == WORDS
    await stream.aclose()
    assert len((await script()).split()) == WORDS
    assert (slow_tls_keepalive.upstream.completed, len(slow_tls_keepalive.connections)) == (2, 1)


async def test_tls_refuses_an_unknown_certificate(settings: Settings, certificate: tuple[Path, Path]) -> None:
    """A certificate nobody vouches for is refused: ai_unavailable, no stream."""
    cert, key = certificate
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    fake, server, pacer = await serve(tls=server_side)
    try:
        use(settings, fake.base_url)
        with pytest.raises(ProviderError) as caught:
            await script()
        assert caught.value.code is ErrorCode.AI_UNAVAILABLE
        assert fake.upstream.requests == 0
    finally:
        pacer.cancel()
        server.close()


async def test_a_server_that_hangs_up_at_once_fails_fast(settings: Settings) -> None:
    """A server that accepts and closes without a word: ai_unavailable at once, not after OPENAI_TIMEOUT_S."""

    def hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    use(settings, f"http://127.0.0.1:{port}/v1")
    settings.STREAMING["OPENAI_TIMEOUT_S"] = 10.0
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(ProviderError) as caught:
            await OpenAIProvider().open(REQUEST)
    finally:
        server.close()
    assert caught.value.code is ErrorCode.AI_UNAVAILABLE
    assert loop.time() - started < 5
