"""Judge benchmark on a 100,000-event trace (the factories' rotating mix of event types).

Measured, each the median of `ROUNDS` runs after one warm-up:
  document_load   TraceDocument.model_validate_json of the stored document (what the
                  Judge Lambda does first)
  metrics         prtrace.metrics.compute_metrics over every event
  prompt          build_prompt: render every event, fit the token budget, elide the rest
  offline         the whole offline judge (metrics + evidence + scores)
`run()` returns flat keys with units in their names; `python -m bench.judge` prints them.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from prtrace.document import TraceDocument
from prtrace.judge.prompt import DEFAULT_TOKEN_BUDGET, build_prompt
from prtrace.judge.rubric import load_rubric
from prtrace.judge.service import judge_trace
from prtrace.metrics import compute_metrics
from tests.judge_factories import document, huge_events

EVENTS = 100_000
ROUNDS = 5


def _median_s(fn: Callable[[], object], rounds: int) -> float:
    fn()  # warm pydantic's validators and the rubric cache
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run() -> dict[str, float]:
    rubric = load_rubric()
    doc = document(huge_events(EVENTS), trace_id="tr_bench")
    raw = doc.model_dump_json().encode()
    metrics = compute_metrics(doc.events)
    prompt = build_prompt(doc, None, rubric, metrics)
    results: dict[str, float] = {
        "judge_trace_events": EVENTS,
        "judge_document_bytes": len(raw),
        "judge_document_load_100k_events_s": _median_s(
            lambda: TraceDocument.model_validate_json(raw), ROUNDS
        ),
        "metrics_100k_events_s": _median_s(lambda: compute_metrics(doc.events), ROUNDS),
        "judge_prompt_100k_events_s": _median_s(
            lambda: build_prompt(doc, None, rubric, metrics), ROUNDS
        ),
        "judge_prompt_100k_tokens": prompt.estimated_tokens,
        "judge_prompt_token_budget": DEFAULT_TOKEN_BUDGET,
        "judge_prompt_100k_events_rendered": prompt.events_rendered,
        "judge_offline_100k_events_s": _median_s(
            lambda: judge_trace(doc, None, rubric, None), ROUNDS
        ),
    }
    results = {k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}
    results["judge_peak_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    return results


def main() -> None:
    results = run()
    table = Table(f"judge on a {EVENTS:,}-event trace (median of {ROUNDS})", "value")
    for key, value in results.items():
        table.add_row(key, f"{value:,}")
    Console().print(table)


if __name__ == "__main__":
    main()
