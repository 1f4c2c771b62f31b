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


def test_repeats_merge_to_medians_with_each_runs_p99_and_the_worst_failure_count() -> None:
    from bench.run import figures, median_result

    runs = [
        {"count": 1000, "all_ms": all_ms, "p50_ms": all_ms - 10, "p99_ms": all_ms - 1, "failures": failures}
        for all_ms, failures in ((560.0, 0), (450.0, 2), (700.0, 0))
    ]
    merged = median_result(runs)
    assert merged["all_ms"] == 560.0 and merged["failures"] == 2
    assert merged["p99_runs"] == [559.0, 449.0, 699.0]
    assert "p99 of runs [559.0, 449.0, 699.0]" in figures("storm", merged)
