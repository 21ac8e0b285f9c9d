"""`python -m examples.judge_sample`: score the example trace with the configured judge.

Assembles the example trace (examples/sample-trace-chunks) into a trace document the way
the pipeline's Assemble step does (events in seq order, event chain, metrics), pairs it
with a QA report of the chosen verdict, and prints the judge's scores. With no
OPENAI_API_KEY this is the offline judge; with one (and OPENAI_BASE_URL for another
OpenAI-compatible server) it is the model. See docs/judge.md for the configuration.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
from pydantic import TypeAdapter
from rich.console import Console
from rich.table import Table

from prtrace.adapters.openai_chat import build_llm_judge
from prtrace.assemble.document import ChainSummary, TraceDocument
from prtrace.assemble.metrics import compute_metrics
from prtrace.canonical import canonical_json
from prtrace.integrity import EventChain
from prtrace.judge.result import JudgeResult
from prtrace.judge.rubric import load_rubric
from prtrace.judge.service import judge_trace
from prtrace.judge.settings import JudgeSettings
from prtrace.qa.report import QAReport
from prtrace.schema import Event, TraceMetadata

EXAMPLE = Path(__file__).parent / "sample-trace-chunks"
TRACE_ID = "tr_example"
# A local, throwaway chain key: this document is never compared with a stored chain.
EXAMPLE_CHAIN_KEY = b"prtrace-example-chain-key-32byte"


def example_document() -> TraceDocument:
    raw: list[object] = []
    for chunk in sorted(EXAMPLE.glob("chunk-*.json")):
        raw.extend(orjson.loads(chunk.read_bytes())["events"])
    events = TypeAdapter(list[Event]).validate_python(raw)
    chain = EventChain(EXAMPLE_CHAIN_KEY, TRACE_ID)
    for event in events:
        chain.append(canonical_json(event.model_dump(mode="json", exclude_none=True)))
    return TraceDocument(
        trace_id=TRACE_ID,
        metadata=TraceMetadata.model_validate_json((EXAMPLE / "trace.json").read_bytes()),
        events=events,
        chain=ChainSummary(key_id="local-example", head=chain.head.hex(), length=chain.length),
        metrics=compute_metrics(events),
    )


def example_qa_report(verdict: str) -> QAReport | None:
    if verdict == "none":
        return None
    target = "tests/test_ranges.py::test_merge_keeps_last_interval"
    return QAReport.model_validate(
        {
            "trace_id": TRACE_ID,
            "verdict": verdict,
            "backend": "example",
            "fail_to_pass": [target] if verdict == "resolved" else [],
            "fail_to_fail": [] if verdict == "resolved" else [target],
        }
    )


def judge_example(verdict: str) -> JudgeResult:
    rubric = load_rubric()
    llm = build_llm_judge(JudgeSettings.from_env(), rubric)
    return judge_trace(example_document(), example_qa_report(verdict), rubric, llm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qa", choices=("resolved", "unresolved", "none"), default="resolved")
    result = judge_example(parser.parse_args().qa)
    console = Console()
    table = Table("dimension", "score", "rationale", "cited events")
    for score in result.scores:
        table.add_row(
            score.dimension, str(score.score), score.rationale, ", ".join(score.cited_event_ids)
        )
    console.print(table)
    console.print(
        f"judge {result.judge} · rubric {result.rubric_version} · status {result.status} · "
        f"overall {result.overall} · QA {result.qa_verdict}"
    )
    for problem in result.problems:
        console.print(f"[yellow]{problem}[/yellow]")


if __name__ == "__main__":
    main()
