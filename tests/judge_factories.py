"""Trace documents and QA reports for the judge's tests and benchmark: the example trace,
two contrasting sessions (a disciplined fix and a flailing one) and huge traces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from pydantic import TypeAdapter

from prtrace.document import ChainSummary, TraceDocument
from prtrace.metrics import compute_metrics
from prtrace.qa.report import QAReport
from prtrace.schema import Event, TraceMetadata
from tests.factories import event, trace_metadata

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample-trace-chunks"
_EVENTS = TypeAdapter(list[Event])


def document(
    events: list[dict[str, Any]], trace_id: str = "tr_judge_test", **metadata: Any
) -> TraceDocument:
    parsed = _EVENTS.validate_python(events)
    return TraceDocument(
        trace_id=trace_id,
        metadata=TraceMetadata.model_validate(metadata or trace_metadata()),
        events=parsed,
        chain=ChainSummary(key_id="k1", head="0" * 64, length=len(parsed)),
        metrics=compute_metrics(parsed),
    )


def sample_events() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for chunk in sorted(SAMPLE.glob("chunk-*.json")):
        found.extend(orjson.loads(chunk.read_bytes())["events"])
    return found


def sample_document() -> TraceDocument:
    metadata = orjson.loads((SAMPLE / "trace.json").read_bytes())
    return document(sample_events(), trace_id="tr_sample", **metadata)


def qa_report(
    verdict: str = "resolved", trace_id: str = "tr_judge_test", **fields: Any
) -> QAReport:
    defaults: dict[str, Any] = {
        "trace_id": trace_id,
        "verdict": verdict,
        "backend": "bwrap",
        "fail_to_pass": ["tests/test_ranges.py::test_merge_keeps_last_interval"]
        if verdict == "resolved"
        else [],
        "pass_to_pass": [f"tests/test_ranges.py::test_case_{i}" for i in range(5)],
    }
    if verdict == "unresolved":
        defaults["fail_to_fail"] = ["tests/test_ranges.py::test_merge_keeps_last_interval"]
    return QAReport.model_validate(defaults | fields)


class SessionBuilder:
    """Builds a session event by event, with seq, ids and timestamps filled in."""

    def __init__(self, start_minute: int = 0) -> None:
        self.events: list[dict[str, Any]] = []
        self._second = start_minute * 60

    def _add(self, kind: str, payload: dict[str, Any], after_s: int) -> str:
        self._second += after_s
        seq = len(self.events)
        hours, rest = divmod(self._second, 3600)
        ts = f"2026-11-25T{9 + hours:02d}:{rest // 60:02d}:{rest % 60:02d}.000Z"
        event_id = f"evt-{seq:04d}"
        self.events.append(
            {"event_id": event_id, "seq": seq, "ts": ts, "type": kind, "payload": payload}
        )
        return event_id

    def note(self, kind: str, text: str, after_s: int = 20) -> str:
        return self._add("rationale_note", {"kind": kind, "text": text}, after_s)

    def test(self, failing: list[str], passed: int = 5, after_s: int = 15) -> str:
        payload = {
            "framework": "pytest",
            "command": ["python", "-m", "pytest", "-q"],
            "passed": passed,
            "failed": len(failing),
            "errors": 0,
            "skipped": 0,
            "failing_tests": failing,
            "duration_ms": 800,
        }
        return self._add("test_run", payload, after_s)

    def edit(self, path: str, added: int = 1, removed: int = 1, after_s: int = 60) -> str:
        diff = "@@ -1,1 +1,1 @@\n" + "-old\n" * removed + "+new\n" * added
        payload = {
            "path": path,
            "change": "modify",
            "diff": diff,
            "lines_added": added,
            "lines_removed": removed,
        }
        return self._add("file_edit", payload, after_s)

    def command(self, argv: list[str], exit_code: int, after_s: int = 10) -> str:
        payload = {
            "argv": argv,
            "cwd": "/workspace",
            "exit_code": exit_code,
            "duration_ms": 500,
        }
        return self._add("cmd_run", payload, after_s)

    def commit(self, message: str, files: list[str], after_s: int = 30) -> str:
        payload = {"sha": f"{len(self.events):040x}", "message": message, "files": files}
        return self._add("commit", payload, after_s)


FAILING_TEST = "tests/test_ranges.py::test_merge_keeps_last_interval"


def disciplined_events() -> list[dict[str, Any]]:
    """Plan, reproduce, hypothesise, one focused edit, test green, explain, commit."""
    s = SessionBuilder()
    s.note("plan", "Reproduce the reported merge() bug with the suite, then fix the cause.")
    s.test([FAILING_TEST])
    s.note("observation", "The last disjoint interval never reaches the output.")
    s.note("hypothesis", "The final append only runs when nothing was merged before.")
    s.edit("ranges/merge.py")
    s.test([], passed=6)
    s.note("decision", "Append the open interval after the loop whenever there is one.")
    s.commit(
        "Keep the last interval in merge()\n\nThe interval still open when the loop ended "
        "was only appended when nothing had been merged. Fixes #42.",
        ["ranges/merge.py"],
    )
    return s.events


def flailing_events() -> list[dict[str, Any]]:
    """Edits all over the place, failing commands, reruns, no tests, no notes."""
    s = SessionBuilder()
    for round_ in range(4):
        for path in ("ranges/merge.py", "ranges/__init__.py"):
            s.edit(path, added=40, removed=35)
        for _ in range(3):
            s.command(["python", "ranges/merge.py"], exit_code=1)
        s.edit("ranges/merge.py", added=30, removed=30 + round_)
    s.commit("wip", ["ranges/merge.py", "ranges/__init__.py"])
    return s.events


def huge_events(count: int) -> list[dict[str, Any]]:
    """`count` events of the factories' rotating mix (diffs, commands, tests, commits)."""
    return [event(seq) for seq in range(count)]
