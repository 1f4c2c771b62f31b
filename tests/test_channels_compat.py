"""channels_compat.adopt: what AsyncConsumer.__call__ sets up, for a consumer that reads its socket itself."""

from __future__ import annotations

from typing import Any

import pytest
from channels.consumer import AsyncConsumer
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from streaming.channels_compat import adopt


class Bare(AsyncConsumer):  # type: ignore[misc]
    channel_layer_alias = "no-per-socket-channel"


async def send(message: dict[str, Any]) -> None:
    raise AssertionError("not called")


def test_the_consumer_gets_what_asyncconsumer_call_sets() -> None:
    """scope, base_send and channel_layer (None) are set as AsyncConsumer.__call__ sets them."""
    consumer, scope = Bare(), {"type": "websocket", "path": "/ws/"}
    adopt(consumer, scope, send)
    assert (consumer.scope, consumer.base_send, consumer.channel_layer) == (scope, send, None)


@override_settings(CHANNEL_LAYERS={"no-per-socket-channel": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
def test_a_configured_channel_layer_is_refused() -> None:
    """An alias that names a layer would need a reader for it: refused rather than silently never read."""
    with pytest.raises(ImproperlyConfigured):
        adopt(Bare(), {"type": "websocket"}, send)


def test_the_stream_consumer_names_no_layer() -> None:
    """The product's consumer reads its socket itself: its alias must name no layer in the settings."""
    from streaming.consumers import StreamConsumer

    adopt(StreamConsumer(), {"type": "websocket"}, send)
