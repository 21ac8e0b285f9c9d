"""The Assemble benchmark at small sizes: it assembles in a fresh process and reports."""

from __future__ import annotations

from bench import assemble


def test_bench_reports_time_and_memory_per_size():
    results = assemble.run((300, 2_500))  # 2,500 events: two chunks
    for name in ("assemble_300", "assemble_2500"):
        assert 0 < results[f"{name}_events_s"] < 30
        assert results[f"{name}_events_per_s"] > 0
        assert 0 < results[f"{name}_peak_rss_mb"] < assemble.TARGET_100K_PEAK_MB
        assert 0 <= results[f"{name}_rss_growth_mb"] < results[f"{name}_peak_rss_mb"]
        assert results[f"{name}_document_mb"] >= 0
    assert "assemble_100k_target_s" not in results
    assert assemble.label(100_000) == "100k"
