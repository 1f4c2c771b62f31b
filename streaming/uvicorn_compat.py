"""uvicorn's websockets-sansio protocol: a text frame written at once, without building a websockets Frame.

uvicorn 0.54's send of `websocket.send` awaits its writable event, then has websockets' sans-I/O protocol build
a Frame, check and serialize it (extensions, struct packing), queue its bytes and hand them back in a list that
is joined and written (py-spy, 1,000 streams: ~15 % of the event loop's samples). While the socket is open and
writable, nothing is queued in the protocol, no extension was negotiated (docs/deploy.md turns per-message
deflate off) and no fragmented message is in progress, those bytes are the frame's header and the payload:
written here with one `transport.write`, in order behind anything the transport still holds. Everything else
(bytes, closes, the handshake, a paused or closing socket, debug logging) takes uvicorn's own path.

`install()` is called by the ASGI entry point; it patches nothing when uvicorn or its websockets-sansio
protocol is not installed.
"""

from __future__ import annotations

from typing import Any

from streaming.ws_frame import frame_header

_PATCHED = "_creatornexus_direct_text"


def install() -> None:
    try:
        from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
        from websockets.protocol import OPEN
    except ImportError:
        return
    if getattr(WebSocketsSansIOProtocol.send, _PATCHED, False):
        return
    original = WebSocketsSansIOProtocol.send

    async def send(self: Any, message: Any) -> None:
        if message["type"] == "websocket.send" and send_text_now(self, message, OPEN):
            return
        await original(self, message)

    setattr(send, _PATCHED, True)
    WebSocketsSansIOProtocol.send = send  # type: ignore[method-assign]


def send_text_now(protocol: Any, message: Any, open_state: Any) -> bool:
    """Write one text message's frame to the transport; False when uvicorn's own path must take it."""
    text = message.get("text")
    if text is None or message.get("bytes") is not None:
        return False
    conn = protocol.conn
    if (
        not protocol.writable.is_set()
        or protocol.disconnected
        or not protocol.handshake_complete
        or protocol.close_sent
        or protocol.initial_response is not None
        or conn.state is not open_state
        or conn.expect_continuation_frame
        or conn.extensions
        or conn.writes
        or conn.debug
    ):
        return False
    transport = protocol.transport
    if transport.is_closing():
        return False
    payload = text.encode()
    transport.write(frame_header(len(payload)) + payload)
    return True
