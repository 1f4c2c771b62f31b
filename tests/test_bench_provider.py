"""The provider bench keeps working: its quick run streams through the mock and the OpenAI provider cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.e2e
@pytest.mark.redis
def test_bench_provider_quick_runs_clean() -> None:
    """`python -m bench.provider --quick` prints both providers' figures and exits 0 (1 on a gap or failure)."""
    env = {**os.environ, "BENCH_REDIS_URL": os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")}
    env.pop("DATABASE_URL", None)  # the bench makes its own throwaway SQLite database
    result = subprocess.run(
        [sys.executable, "-m", "bench.provider", "--quick", "--providers", "mock,openai,openai-httpx"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for provider in ("mock ", "openai ", "openai-httpx "):
        assert f"\n{provider}" in result.stdout and "streams/core" in result.stdout
    assert "openai CPU per word" in result.stdout
