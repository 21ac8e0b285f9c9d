"""Issue 31's first "Must show", on the held-out set (tests/judge_heldout/): thirteen
sessions on a bug of their own repository, written apart from the judge and its
calibration set. Each session's final tree goes through the whole QA in the sandbox (as the
pipeline runs it: the trace's reproduction, both snapshots), its document carries the
snapshots and the trace-to-state check Assemble would add, and the offline judge scores it
through the judge's entry point with that real QA report.

What must hold:
- the careful session ranks first (its overall above every other session's);
- every cheat scores below every honest fix, with fix_correctness at most 1;
- the session that never fixed the bug scores below every session that fixed it.
A failure prints the whole table (session, label, QA verdict and flags, the six scores,
overall), so it can be read without rerunning.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

import pytest

from prtrace.adapters.artifacts import DirectoryArtifactStore
from prtrace.assemble.document import TraceDocument
from prtrace.judge.result import JudgeResult
from prtrace.judge.rubric import DIMENSION_IDS, load_rubric
from prtrace.judge.service import judge_trace
from prtrace.provenance.state_check import RecordedEdit, check_state
from prtrace.qa.local_inputs import store_local_snapshot
from prtrace.qa.report import QAReport
from prtrace.qa.service import QAService
from prtrace.qa.targets import reproduction
from prtrace.schema import BlobRef, FileEditEvent, WorkspaceSnapshots
from prtrace.storage_keys import artifact_key
from tests.judge_factories import document
from tests.judge_heldout.session import write_base_tree
from tests.judge_heldout.sessions import DESCRIPTION, SESSIONS, TITLE, HeldoutSession
from tests.sandbox.conftest import Backend, make_scratch

TENANT: Final = "t-heldout"
SHORT: Final = {
    "problem_understanding": "und",
    "diagnosis": "diag",
    "fix_correctness": "fix",
    "test_discipline": "test",
    "efficiency": "eff",
    "communication": "comm",
}


@dataclass(frozen=True)
class Scored:
    session: HeldoutSession
    document: TraceDocument
    report: QAReport
    result: JudgeResult

    @property
    def name(self) -> str:
        return self.session.name

    @property
    def overall(self) -> float:
        # A missing overall can never satisfy an ordering: it ranks below everything.
        return -1.0 if self.result.overall is None else self.result.overall

    def score(self, dimension: str) -> int:
        found = [s.score for s in self.result.scores if s.dimension == dimension]
        return found[0] if found else -1


def _metadata(session: HeldoutSession) -> dict[str, object]:
    return {
        "repository": {
            "url": "https://git.example.com/tools/durations.git",
            "base_commit": "4c1e0b7a9d2f" + "0" * 28,
        },
        "task": {"title": TITLE, "description": DESCRIPTION},
        "author": {"id": f"dev-{session.name}", "kind": "agent"},
        "client": {"name": "prtrace-recorder", "version": "1.4.0"},
    }


def _opener(
    store: DirectoryArtifactStore, trace_id: str, ref: BlobRef
) -> Callable[[], tuple[IO[bytes], str]]:
    def open_snapshot() -> tuple[IO[bytes], str]:
        return io.BytesIO(store.get(artifact_key(TENANT, trace_id, ref.sha256))), ref.media_type

    return open_snapshot


def _score(backend: Backend, root: Path, base: Path, entry: HeldoutSession) -> Scored:
    """The session's document and final tree through QA, then the judge."""
    session = entry.build()
    final = session.write_tree(root / entry.name / "final")
    store = DirectoryArtifactStore(root / entry.name / "artifacts")
    base_ref, final_ref = (
        store_local_snapshot(tree, store, TENANT, entry.trace_id) for tree in (base, final)
    )
    trace = document(session.events, trace_id=entry.trace_id, **_metadata(entry))
    edits = [
        RecordedEdit(e.seq, e.payload.path, e.payload.change, e.payload.diff or "")
        for e in trace.events
        if isinstance(e, FileEditEvent)
    ]
    trace = trace.model_copy(
        update={
            "snapshots": WorkspaceSnapshots(base=base_ref, final=final_ref),
            "state_check": check_state(
                edits,
                _opener(store, entry.trace_id, base_ref),
                _opener(store, entry.trace_id, final_ref),
            ),
        }
    )
    service = QAService(backend.sandbox, store, backend.settings(), backend.owner)
    report = service.run(
        TENANT, entry.trace_id, base_ref, final_ref, reproduction=reproduction(trace.events)
    )
    result = judge_trace(trace, report, load_rubric(), None)
    return Scored(entry, trace, report, result)


@pytest.fixture(scope="module")
def scored(bwrap: Backend) -> Iterator[list[Scored]]:
    root = make_scratch("judge-heldout")
    try:
        base = write_base_tree(root / "base")
        # Two at a time: each QA run is mostly waiting on its sandboxed pytest.
        with ThreadPoolExecutor(max_workers=2) as pool:
            rows = list(pool.map(lambda entry: _score(bwrap, root, base, entry), SESSIONS))
        yield rows
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _table(rows: list[Scored]) -> str:
    header = (
        f"{'session':<22} {'label':<12} {'QA':<11} "
        + " ".join(f"{SHORT[d]:>4}" for d in DIMENSION_IDS)
        + f" {'overall':>7}  QA flags"
    )
    lines = [header]
    for row in sorted(rows, key=lambda r: -r.overall):
        label = row.session.label + ("*" if row.session.careful else "")
        flags = ",".join(f.code + ("!" if f.blocking else "") for f in row.report.flags)
        lines.append(
            f"{row.name:<22} {label:<12} {row.report.verdict:<11} "
            + " ".join(f"{row.score(d):>4}" for d in DIMENSION_IDS)
            + f" {row.overall:>7.2f}  {flags}"
        )
    lines.append("(* careful; ! blocking flag)")
    return "\n".join(lines)


def _with_label(rows: list[Scored], label: str) -> list[Scored]:
    found = [r for r in rows if r.session.label == label]
    assert found, f"the held-out set has no {label} session"
    return found


def test_the_held_out_sets_labels_hold_in_qa(scored: list[Scored]) -> None:
    """The set itself, judge aside: each session's recorded edits rebuild its final tree,
    every honest fix is `resolved` and the never-fixed session `unresolved` by real QA."""
    problems = [
        f"{r.name}: state check {r.document.state_check}"
        for r in scored
        if r.document.state_check is None or r.document.state_check.status != "match"
    ]
    problems += [
        f"{r.name}: QA {r.report.verdict} ({r.report.verdict_reason})"
        for r in _with_label(scored, "honest-fix")
        if r.report.verdict != "resolved"
    ]
    problems += [
        f"{r.name}: QA {r.report.verdict} ({r.report.verdict_reason})"
        for r in _with_label(scored, "never-fixed")
        if r.report.verdict != "unresolved"
    ]
    assert not problems, "\n".join(problems) + "\n" + _table(scored)


def test_careful_session_ranks_first(scored: list[Scored]) -> None:
    careful = [r for r in scored if r.session.careful]
    assert len(careful) == 1, [r.name for r in careful]
    first = careful[0]
    not_below = [r.name for r in scored if r is not first and r.overall >= first.overall]
    assert not not_below, f"{first.name} ({first.overall:.2f}) is not above {not_below}\n" + _table(
        scored
    )


def test_every_cheat_below_every_honest_fix(scored: list[Scored]) -> None:
    honest = _with_label(scored, "honest-fix")
    problems = []
    for cheat in _with_label(scored, "cheat"):
        if cheat.score("fix_correctness") > 1:
            problems.append(f"{cheat.name}: fix_correctness {cheat.score('fix_correctness')} > 1")
        outscored = [h.name for h in honest if cheat.overall >= h.overall]
        if outscored:
            problems.append(f"{cheat.name} ({cheat.overall:.2f}) not below {outscored}")
    assert not problems, "\n".join(problems) + "\n" + _table(scored)


def test_never_fixed_below_every_fix(scored: list[Scored]) -> None:
    fixed = _with_label(scored, "honest-fix")
    problems = [
        f"{never.name} ({never.overall:.2f}) not below "
        f"{[f.name for f in fixed if never.overall >= f.overall]}"
        for never in _with_label(scored, "never-fixed")
        if any(never.overall >= f.overall for f in fixed)
    ]
    assert not problems, "\n".join(problems) + "\n" + _table(scored)
