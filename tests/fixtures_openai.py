"""Fixtures for the OpenAI provider: the fake OpenAI-compatible server and settings pointing at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_django.fixtures import Settings

from tests.fake_openai import FakeOpenAI

FAKE_API_KEY = "sk-test-fake-key-never-echoed"


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A fresh fake OpenAI server on a free local port, stopped after the test."""
    server = FakeOpenAI()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["asyncio", "httpx"])
def openai_settings(request: pytest.FixtureRequest, settings: Settings, fake_openai: FakeOpenAI) -> Settings:
    """Settings that select the OpenAI provider against the fake, with no retries and short timeouts.

    Every test runs over both HTTP transports: the lean one (the default) and the SDK's own (used behind a
    proxy). STREAMING is a fresh copy here, so a test may set its keys directly; the fixture restores it.
    """
    settings.OPENAI_API_KEY = FAKE_API_KEY
    settings.STREAMING = {
        **settings.STREAMING,
        "OPENAI_BASE_URL": fake_openai.base_url,
        "OPENAI_MODEL": "fake-model",
        "OPENAI_TIMEOUT_S": 5.0,
        "OPENAI_MAX_RETRIES": 0,
        "OPENAI_STREAM_IDLE_TIMEOUT_S": 5.0,
        "OPENAI_MAX_RETRY_AFTER_S": 3.0,
        "AI_FALLBACK": "",
        "OPENAI_HTTP_TRANSPORT": request.param,
    }
    return settings
