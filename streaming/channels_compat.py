"""Channels' AsyncConsumer.__call__ for a consumer without a channel layer: the socket is read in its own task.

AsyncConsumer.__call__ reads through channels.utils.await_many_dispatch, which runs every receive() in a task
of its own and waits on it with asyncio.wait, so that it can read a channel layer at the same time: each idle
socket holds that task, its context, its coroutine and a waiter future (~1.5 KB, bench/census.py; issue 11).
A consumer whose channel_layer_alias names no layer needs none of it: adopt() sets up what __call__ sets up
(scope, channel_layer, base_send), and the consumer awaits receive() itself, ending on StopConsumer:

    adopt(self, scope, send)
    try:
        while True:
            await self.dispatch(await receive())
    except StopConsumer:
        pass
"""

from __future__ import annotations

from typing import Any

from channels.consumer import AsyncConsumer
from channels.layers import get_channel_layer
from django.core.exceptions import ImproperlyConfigured


def adopt(consumer: AsyncConsumer, scope: dict[str, Any], send: Any) -> None:
    """What AsyncConsumer.__call__ sets before its loop; refused for a consumer whose alias names a layer."""
    alias = consumer.channel_layer_alias
    if get_channel_layer(alias) is not None:
        # A layer would need its own reader beside the socket's: that is what AsyncConsumer.__call__ is for.
        raise ImproperlyConfigured(f"{type(consumer).__name__} reads no channel layer, but {alias!r} names one")
    consumer.scope = scope
    consumer.channel_layer = None
    consumer.base_send = send
