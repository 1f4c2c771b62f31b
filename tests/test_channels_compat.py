"""receive_loop: Channels' consumer loop without a channel layer, in the socket's own task."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.consumer import AsyncConsumer
from channels.exceptions import StopConsumer
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from streaming.channels_compat import receive_loop


class Recorder(AsyncConsumer):  # type: ignore[misc]
    """Records each message and the task it was handled in; `stop` ends the consumer as a disconnect does."""

    channel_layer_alias = "no-per-socket-channel"

    def __init__(self) -> None:
        self.seen: list[tuple[str, asyncio.Task[Any] | None]] = []

    async def dispatch(self, message: dict[str, Any]) -> None:
        self.seen.append((message["type"], asyncio.current_task()))
        if message["type"] == "stop":
            raise StopConsumer


def messages(*types: str) -> Any:
    queue = iter({"type": t} for t in types)

    async def receive() -> dict[str, Any]:
        return next(queue)

    return receive


async def send(message: dict[str, Any]) -> None:
    raise AssertionError("not called")


async def test_messages_are_dispatched_in_order_in_the_callers_task() -> None:
    """Each message reaches dispatch in order, in the task that runs the loop (no reader task of its own)."""
    consumer = Recorder()
    await receive_loop(consumer, {"type": "websocket"}, messages("a", "b", "stop"), send)
    here = asyncio.current_task()
    assert consumer.seen == [("a", here), ("b", here), ("stop", here)]


async def test_the_consumer_gets_what_asyncconsumer_call_sets() -> None:
    """scope, base_send and channel_layer (None) are set as AsyncConsumer.__call__ sets them."""
    consumer, scope = Recorder(), {"type": "websocket", "path": "/ws/"}
    await receive_loop(consumer, scope, messages("stop"), send)
    assert (consumer.scope, consumer.base_send, consumer.channel_layer) == (scope, send, None)


@override_settings(CHANNEL_LAYERS={"no-per-socket-channel": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
async def test_a_configured_channel_layer_is_refused() -> None:
    """An alias that names a layer would need a reader for it: refused rather than silently never read."""
    with pytest.raises(ImproperlyConfigured):
        await receive_loop(Recorder(), {"type": "websocket"}, messages("stop"), send)
