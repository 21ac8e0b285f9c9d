"""The judge benchmark runs for real on a smaller trace (figures are reported by
`python -m bench.judge`, never asserted as timings here)."""

from __future__ import annotations

from bench import judge as judge_bench


def test_judge_bench_returns_flat_numbers(monkeypatch):
    monkeypatch.setattr(judge_bench, "EVENTS", 3_000)
    monkeypatch.setattr(judge_bench, "ROUNDS", 1)
    results = judge_bench.run()
    assert results["judge_trace_events"] == 3_000
    for key in (
        "judge_prompt_100k_events_s",
        "judge_offline_100k_events_s",
        "metrics_100k_events_s",
        "judge_document_load_100k_events_s",
    ):
        assert results[key] > 0
    assert 0 < results["judge_prompt_100k_tokens"] <= results["judge_prompt_token_budget"]
    assert all(isinstance(v, int | float) for v in results.values())
