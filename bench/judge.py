"""Judge benchmark on a 100,000-event trace (the factories' rotating mix of event types).

Measured, each the median of `ROUNDS` runs after one warm-up:
  document_load   TraceDocument.model_validate_json of the stored document (what the
                  Judge Lambda does first)
  metrics         prtrace.assemble.metrics.compute_metrics over every event
  prompt          build_prompt: render every event, fit the token budget, elide the rest
  offline         the whole offline judge (metrics + evidence + scores)
and, once, the LLM path against a scripted OpenAI-compatible server (tests/fake_openai.py)
on a 100,000-event trace whose only three edits sit among notes, identical green runs and
commands, with its snapshots' patch: the prompt the server received, its estimated tokens
and what it kept (edits, patch files, events).
`run()` returns flat keys with units in their names; `python -m bench.judge` prints them.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.memory import peak_rss_mb
from prtrace.adapters.openai_chat import build_llm_judge
from prtrace.assemble.document import TraceDocument
from prtrace.assemble.metrics import compute_metrics
from prtrace.judge.prompt import DEFAULT_TOKEN_BUDGET, build_prompt, estimate_tokens
from prtrace.judge.rubric import Rubric, load_rubric
from prtrace.judge.service import judge_trace
from prtrace.judge.settings import JudgeSettings
from tests.fake_openai import answer, completion, fake_openai_server
from tests.judge_factories import document, huge_events, qa_report
from tests.judge_patch_factories import needle_trace, snapshot_patch

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
        "judge_prompt_100k_file_edits_rendered": prompt.user.split("\n## Events", 1)[1].count(
            " file_edit "
        ),
        "judge_offline_100k_events_s": _median_s(
            lambda: judge_trace(doc, None, rubric, None), ROUNDS
        ),
    }
    results = {k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}
    results["judge_offline_100k_events_peak_rss_mb"] = _lambda_peak_mb(raw)
    return results | llm_path(rubric)


def llm_path(rubric: Rubric) -> dict[str, float]:
    """The OpenAI judge, through the real client, against a scripted fake server: the
    prompt it sent for a trace of EVENTS events with three edits lost in noise."""
    edits = {EVENTS // 10: "src/pkg/core.py", EVENTS // 2: "src/pkg/util.py",
             EVENTS * 9 // 10: "tests/test_pkg.py"}  # fmt: skip
    doc = document(needle_trace(EVENTS, edits), trace_id="tr_bench_needle")
    base = {path: b"old\n" * 3 for path in edits.values()}
    doc, patch = snapshot_patch(doc, base, {path: b"old\nnew\nold\n" for path in edits.values()})
    with fake_openai_server() as fake:
        fake.push(completion(answer(cite=[f"e-{min(edits):06d}"])))
        settings = JudgeSettings.model_validate(
            {"openai_api_key": "sk-bench-not-real", "openai_base_url": fake.url,
             "model": "bench-judge", "max_retries": 0}
        )  # fmt: skip
        judge = build_llm_judge(settings, rubric)
        assert judge is not None
        start = time.perf_counter()
        result = judge.judge(doc, qa_report("resolved", doc.trace_id), compute_metrics(doc.events),
                             patch=patch)  # fmt: skip
        elapsed = time.perf_counter() - start
        system, user = (message["content"] for message in fake.requests[0]["messages"])
    patch_text, events_text = user.split("\n## Patch (", 1)[1].split("\n## Events", 1)
    assert result.prompt is not None
    return {
        "judge_llm_prompt_100k_s": round(elapsed, 4),
        "judge_llm_prompt_100k_tokens": estimate_tokens(system) + estimate_tokens(user),
        "judge_llm_prompt_100k_events_rendered": result.prompt.events_rendered,
        "judge_llm_prompt_100k_edits": len(edits),
        "judge_llm_prompt_100k_edits_kept": sum(
            f"[e-{seq:06d}] #{seq} " in events_text for seq in edits
        ),
        "judge_llm_prompt_100k_patch_files": len(patch.files),
        "judge_llm_prompt_100k_patch_files_shown": patch_text.count("\ndiff --git a/"),
    }


def _lambda_peak_mb(raw: bytes) -> float:
    """What the Judge Lambda holds at its peak: a fresh process loads the stored document
    and runs the offline judge on it (the OpenAI judge holds the same plus the prompt)."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "document.json"
        path.write_bytes(raw)
        answer = subprocess.run(  # noqa: S603 - this interpreter running this module
            [sys.executable, "-m", "bench.judge", "--worker", str(path)],
            check=True,
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
    return round(float(answer.stdout.splitlines()[-1]), 1)


def _worker(path: Path) -> float:
    doc = TraceDocument.model_validate_json(path.read_bytes())
    judge_trace(doc, None, load_rubric(), None)
    return peak_rss_mb()


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(_worker(Path(sys.argv[2])))
        return
    results = run()
    table = Table(f"judge on a {EVENTS:,}-event trace (median of {ROUNDS})", "value")
    for key, value in results.items():
        table.add_row(key, f"{value:,}")
    Console().print(table)


if __name__ == "__main__":
    main()
