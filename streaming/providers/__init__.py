"""AI providers: something that writes a script as a stream of text deltas."""

from __future__ import annotations

from django.conf import settings

from streaming.providers.base import Provider
from streaming.providers.mock import MockProvider
from streaming.providers.openai import OpenAIProvider


def get_provider() -> Provider:
    """OpenAI (or the OpenAI-compatible server at OPENAI_BASE_URL) when OPENAI_API_KEY is set, else the mock."""
    if settings.OPENAI_API_KEY:
        return OpenAIProvider()
    return MockProvider()


def get_fallback_provider() -> Provider | None:
    """The provider that serves a request whose provider failed before its first word (AI_FALLBACK)."""
    if settings.STREAMING["AI_FALLBACK"] == "mock":
        return MockProvider()
    return None
