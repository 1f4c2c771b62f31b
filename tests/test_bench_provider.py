"""The provider bench keeps working: its quick run streams through the mock and the OpenAI provider cleanly."""

from __future__ import annotations

import os

import pytest

from tests.conftest import run_bench


@pytest.mark.e2e
@pytest.mark.redis
def test_bench_provider_quick_runs_clean() -> None:
    """`python -m bench.provider --quick` prints both providers' figures and exits 0 (1 on a gap or failure)."""
    redis_url = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")
    result = run_bench("provider", "--quick", "--providers", "mock,openai,openai-httpx", redis_url=redis_url)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for provider in ("mock ", "openai ", "openai-httpx "):
        assert f"\n{provider}" in result.stdout and "streams/core" in result.stdout
    assert "openai CPU per word" in result.stdout
