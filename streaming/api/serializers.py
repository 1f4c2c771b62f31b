"""Serializers for saved scripts."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from streaming.models import StreamSession
from streaming.protocol import ErrorCode, Platform

PROVIDERS = ["mock", "openai"]

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


@extend_schema_field(
    {
        "type": "object",
        "properties": {name: {"type": "integer"} for name in ("prompt_tokens", "completion_tokens", "total_tokens")},
        "additionalProperties": False,
        "description": "Tokens the AI call used; empty while running or when the provider reported none.",
    }
)
class UsageField(serializers.JSONField):
    """The provider's token counts, as stored."""


class ScriptFields(serializers.ModelSerializer[StreamSession]):
    """What every script representation shares; the choices name the wire strings of streaming/protocol.py."""

    platform = serializers.ChoiceField(choices=[p.value for p in Platform], read_only=True)
    provider = serializers.ChoiceField(choices=PROVIDERS, read_only=True)
    error_code = serializers.ChoiceField(
        choices=[c.value for c in ErrorCode], allow_blank=True, read_only=True, help_text="Why it failed; blank if not."
    )
    usage = UsageField(read_only=True)


class ScriptListSerializer(ScriptFields):
    """A saved script in the list: its request, state and the first 160 characters of its text."""

    excerpt = serializers.SerializerMethodField()

    class Meta:
        model = StreamSession
        fields = [*_FIELDS, "excerpt"]
        read_only_fields = fields

    def get_excerpt(self, obj: StreamSession) -> str:
        return obj.script[:160]


class ScriptDetailSerializer(ScriptFields):
    """A saved script with its full text (the words streamed, in order)."""

    class Meta:
        model = StreamSession
        fields = [*_FIELDS, "script"]
        read_only_fields = fields
