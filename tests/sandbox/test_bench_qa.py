"""`bench/qa.py` runs and reports flat, unit-named figures; the example meets its target."""

from __future__ import annotations

import math

from bench import qa
from tests.sandbox.conftest import Backend


def test_qa_bench_reports_every_figure(bwrap: Backend) -> None:
    results = qa.run(rounds=1)
    expected = {
        "qa_sandbox_start_bwrap_ms",
        "qa_bare_run_ms",
        "qa_sandboxed_run_bwrap_ms",
        "qa_example_total_bwrap_s",
        "qa_example_total_target_s",
    }
    assert expected <= results.keys()
    assert all(k.endswith(("_ms", "_s")) for k in results)
    assert all(math.isfinite(v) and v > 0 for v in results.values())
    assert results["qa_example_total_bwrap_s"] < qa.TARGET_TOTAL_S
