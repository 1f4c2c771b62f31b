"""The benchmark command keeps working: its quick smoke run finishes with no gap and no failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.e2e
def test_bench_quick_runs_clean() -> None:
    """`python -m bench.run --quick` prints its table and exits 0 (it exits 1 on any gap or failed stream)."""
    env = {**os.environ, "BENCH_REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")}
    env.pop("DATABASE_URL", None)  # the bench makes its own throwaway SQLite database
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--modes", "baseline,embedded,redis,uvicorn-redis"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "stream" in result.stdout and "words/s" in result.stdout
