"""The export job benchmark at a small size: it exports every seeded trace in a fresh
process and reports the time per trace and the process's peak memory."""

from __future__ import annotations

import pytest

from bench import export_job

pytestmark = pytest.mark.slow  # a fresh process that imports the whole export stack


def test_bench_exports_every_seeded_trace_and_reports() -> None:
    results = export_job.run(12)
    assert results["export_job_traces"] == 12
    assert results["export_job_events"] == 12 * 11  # the sample session's events, each
    assert results["export_job_bytes"] > 0
    assert 0 < results["export_job_s"] < 60
    per_trace_s = results["export_job_ms_per_trace"] * 12 / 1000
    assert abs(per_trace_s - results["export_job_s"]) <= 0.01  # both rounded
    assert 0 < results["export_job_peak_rss_before_mb"] <= results["export_job_peak_rss_mb"]
