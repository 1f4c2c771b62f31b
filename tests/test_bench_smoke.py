"""The benchmark command keeps working: its quick smoke run finishes with no gap and no failure."""

from __future__ import annotations

import os

import pytest

from tests.conftest import run_bench


@pytest.mark.e2e
def test_bench_quick_runs_clean() -> None:
    """`python -m bench.run --quick` prints its table and exits 0 (it exits 1 on any gap or failed stream)."""
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    result = run_bench("run", "--quick", "--modes", "baseline,embedded,redis,uvicorn-redis", redis_url=redis_url)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "stream" in result.stdout and "words/s" in result.stdout
