"""Serializers for saved scripts."""

from rest_framework import serializers

from streaming.models import StreamSession

_FIELDS = [
    "id",
    "session_id",
    "request_id",
    "topic",
    "platform",
    "duration",
    "tone",
    "audience",
    "status",
    "provider",
    "model",
    "fallback",
    "estimated_words",
    "words",
    "usage",
    "error_code",
    "error_message",
    "elapsed_ms",
    "created_at",
    "finished_at",
]


class ScriptListSerializer(serializers.ModelSerializer[StreamSession]):
    excerpt = serializers.SerializerMethodField()

    class Meta:
        model = StreamSession
        fields = [*_FIELDS, "excerpt"]
        read_only_fields = fields

    def get_excerpt(self, obj: StreamSession) -> str:
        return obj.script[:160]


class ScriptDetailSerializer(serializers.ModelSerializer[StreamSession]):
    class Meta:
        model = StreamSession
        fields = [*_FIELDS, "script"]
        read_only_fields = fields
