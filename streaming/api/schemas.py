"""The bodies of the plain async views (health, readiness, stats), described for the OpenAPI schema only.

Those views build their JSON by hand (they must not block the event loop on DRF); these serializers say what
they answer, and tests/test_openapi.py checks every real answer against them.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from streaming.models import StreamSession

CHECK_RESULT = "`ok`, or `error: <exception class>`."
CHANNEL_LAYERS = ("redis", "in-memory")


class HealthSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["ok"])


class ProviderSerializer(serializers.Serializer[Any]):
    """The AI provider serving this process, described without calling it (never its key)."""

    name = serializers.ChoiceField(choices=["mock", "openai"])
    model = serializers.CharField()
    host = serializers.CharField(required=False, help_text="The OpenAI-compatible server's host[:port] (openai only).")


class ChecksSerializer(serializers.Serializer[Any]):
    database = serializers.CharField(help_text=CHECK_RESULT)
    channel_layer = serializers.CharField(help_text=CHECK_RESULT)


class ReadinessSerializer(serializers.Serializer[Any]):
    """What /readyz checked: `ok` with 200, `unavailable` with 503 when a check failed."""

    status = serializers.ChoiceField(choices=["ok", "unavailable"])
    checks = ChecksSerializer()
    channel_layer = serializers.ChoiceField(choices=CHANNEL_LAYERS)
    provider = ProviderSerializer()
    process_id = serializers.CharField()


class DrainingSerializer(serializers.Serializer[Any]):
    """A process that got SIGTERM/SIGINT: not ready whatever its checks say."""

    status = serializers.ChoiceField(choices=["draining"])
    process_id = serializers.CharField()


class ConnectionCountsSerializer(serializers.Serializer[Any]):
    active = serializers.IntegerField(help_text="Open now, on every live process.")
    total = serializers.IntegerField(help_text="Ever recorded in the database.")


class StreamCountsSerializer(serializers.Serializer[Any]):
    running = serializers.IntegerField(help_text="Running now, cluster-wide (from the store).")
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()


class ProcessSerializer(serializers.Serializer[Any]):
    """One live server process, from its last heartbeat."""

    process_id = serializers.CharField()
    host = serializers.CharField()
    pid = serializers.IntegerField()
    started_at = serializers.FloatField(help_text="Unix time.")
    connections = serializers.IntegerField()
    streams = serializers.IntegerField()


class StatsSerializer(serializers.Serializer[Any]):
    connections = ConnectionCountsSerializer()
    streams = StreamCountsSerializer()
    processes = ProcessSerializer(many=True)
    channel_layer = serializers.ChoiceField(choices=CHANNEL_LAYERS)
    provider = ProviderSerializer()


# Every status a saved script can have: the ?status= filter of GET /api/scripts/.
SCRIPT_STATUSES = StreamSession.Status.values


class WordUsageSerializer(serializers.Serializer[Any]):
    used = serializers.IntegerField(min_value=0, help_text="Words streamed today (UTC).")
    limit = serializers.IntegerField(allow_null=True, help_text="USER_DAILY_WORD_LIMIT; null = no limit.")
    resets_at = serializers.DateTimeField(help_text="When today's count starts again (midnight UTC).")


class StreamUsageSerializer(serializers.Serializer[Any]):
    running = serializers.IntegerField(min_value=0, help_text="The user's running streams on every process.")
    limit = serializers.IntegerField(allow_null=True, help_text="WS_MAX_STREAMS_PER_USER; null = no limit.")


class SocketUsageSerializer(serializers.Serializer[Any]):
    open = serializers.IntegerField(min_value=0, help_text="The user's open sockets on every process.")
    limit = serializers.IntegerField(allow_null=True, help_text="WS_MAX_CONNECTIONS_PER_USER; null = no limit.")


class UsageSerializer(serializers.Serializer[Any]):
    """GET /api/usage/: the user's own figures against each quota."""

    words = WordUsageSerializer()
    streams = StreamUsageSerializer()
    sockets = SocketUsageSerializer()
