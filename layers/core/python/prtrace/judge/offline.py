"""The offline judge (`offline-heuristic v1`): deterministic scores from the trace and the
QA report, with no model. The default when no API key is configured, and the stand-in
when the model is unreachable. Every score cites the events it was computed from.

One pass over the events (`EvidenceAccumulator`) gathers the evidence; each dimension is
then a small table of points, capped to 0..5 (the same table, explained, is in JUDGE.md):

problem_understanding
    +2 a rationale note before the first edit; +1 a second one of another kind;
    +2 a failing test run before the first edit (the failure was reproduced).
diagnosis
    +2 a hypothesis or observation note before the first edit; +1 a hypothesis note;
    +1 the reproduction named its failing tests; +1 a focused fix (<= 3 files, <= 100 lines).
fix_correctness
    QA resolved: 5 (3 with PASS_TO_FAIL). QA unresolved: 2 with some FAIL_TO_PASS,
    0 with only PASS_TO_FAIL, else 1. No QA or QA error: 3 when a test run after the last
    edit passed, else 1 (the developer's own runs are weaker evidence).
test_discipline
    No test run: 0. Else 1, +2 a failing run before the first edit, +1 an all-passing run
    after the last edit, +1 at least half of the edit batches followed by a test run.
efficiency
    No edit: 0. Else 5, -1 over 3 edits per file touched (-2 over 6), -1 over half of
    3+ commands failed, -1 two or more reruns of a command with no edit between,
    -1 over 500 lines changed.
communication
    +1 a note (+2 three or more); +1 notes of two or more kinds; +1 a commit;
    +1 its message has a subject line and a body.
With no edit at all, problem understanding and diagnosis are capped at 1. "Test run" means
a test_run event; a trace without any reads test commands among its cmd_run events instead
(`is_test_command`: pytest, tox, `go test`, `npm test`, ...; exit code 0 passes).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from prtrace.document import TraceDocument
from prtrace.judge.result import OFFLINE_JUDGE, DimensionScore, JudgeResult
from prtrace.judge.rubric import Rubric
from prtrace.metrics import is_failing, is_green
from prtrace.qa.report import QAReport
from prtrace.schema import (
    CmdRunEvent,
    CommitEvent,
    Event,
    FileEditEvent,
    RationaleNoteEvent,
    TestRunEvent,
)

MAX_CITATIONS: Final = 8
FOCUSED_MAX_FILES: Final = 3
FOCUSED_MAX_LINES: Final = 100
CHURN_MAX_LINES: Final = 500


# Commands that run a test suite, recognised when a recorder logs no test_run events.
_TEST_RUNNERS: Final = frozenset({"pytest", "py.test", "tox", "nox", "unittest", "nose2"})
_TEST_VERBS: Final = frozenset({"test", "check"})
_BUILD_TOOLS: Final = frozenset(
    {"go", "cargo", "npm", "yarn", "pnpm", "make", "mvn", "gradle", "gradlew", "dotnet"}
)


def is_test_command(argv: Sequence[str]) -> bool:
    names = [arg.rsplit("/", 1)[-1] for arg in argv[:4]]
    if any(name in _TEST_RUNNERS for name in names):
        return True  # pytest ..., python -m pytest, tox, python -m unittest
    return len(names) > 1 and names[0] in _BUILD_TOOLS and names[1] in _TEST_VERBS


@dataclass
class TestEvidence:
    """What the test runs of one source (test_run events, or test commands) show."""

    __test__: ClassVar[bool] = False  # not a pytest test class
    source: str
    runs: int = 0
    ids: list[str] = field(default_factory=list)
    reproduction: str | None = None  # failing run before the first edit
    # A failing run before the first edit that named the failing tests (see `names_tests`).
    named_reproduction: str | None = None
    green_after_last_edit: str | None = None
    tested_batches: int = 0
    _untested_batch: bool = False

    def edit(self) -> None:
        self.green_after_last_edit = None
        self._untested_batch = True

    def run(
        self, event_id: str, failing: bool, green: bool, named: bool, edits_so_far: int
    ) -> None:
        self.runs += 1
        _cite(self.ids, event_id)
        if self._untested_batch:
            self.tested_batches += 1
            self._untested_batch = False
        if failing and not edits_so_far:
            if self.reproduction is None:
                self.reproduction = event_id
            if named and self.named_reproduction is None:
                self.named_reproduction = event_id
        if green and edits_so_far:
            self.green_after_last_edit = event_id


@dataclass
class EvidenceAccumulator:
    """Bounded evidence from one pass in seq order: counts, flags and a few event ids."""

    # The tests QA found the fix must turn from failing to passing (FAIL_TO_PASS), when
    # known: a reproduction names the failing tests only when it names one of them.
    targets: frozenset[str] = frozenset()
    edits: int = 0
    first_edit: str | None = None
    edit_batches: int = 0
    _editing: bool = False
    notes_before_edit: list[tuple[str, str]] = field(default_factory=list)  # (id, kind)
    # The count apart from the ids: the citation cap bounds the ids, not the evidence.
    notes_before_edit_count: int = 0
    note_kinds: set[str] = field(default_factory=set)
    notes: int = 0
    note_ids: list[str] = field(default_factory=list)
    hypothesis_ids: list[str] = field(default_factory=list)
    test_events: TestEvidence = field(default_factory=lambda: TestEvidence("test_run events"))
    test_commands: TestEvidence = field(
        default_factory=lambda: TestEvidence("test commands (no test_run events recorded)")
    )
    command_reruns: int = 0
    test_reruns: int = 0
    rerun_ids: list[str] = field(default_factory=list)
    _last_command: tuple[str, ...] | None = None
    _last_test: tuple[str, ...] | None = None
    last_commit: CommitEvent | None = None

    @property
    def tests(self) -> TestEvidence:
        """test_run events when the trace has any; else test commands among cmd_run events
        (exit code 0 passes, anything else fails), so a recorder that logs only commands
        is not scored as if no test ever ran."""
        return self.test_events if self.test_events.runs else self.test_commands

    def add(self, event: Event) -> None:
        if isinstance(event, FileEditEvent):
            self._add_edit(event)
        elif isinstance(event, TestRunEvent):
            self._add_test_run(event)
        elif isinstance(event, CmdRunEvent):
            self._add_command(event)
        elif isinstance(event, RationaleNoteEvent):
            self._add_note(event)
        elif isinstance(event, CommitEvent):
            self.last_commit = event

    def _add_edit(self, event: FileEditEvent) -> None:
        self.edits += 1
        if self.first_edit is None:
            self.first_edit = event.event_id
        if not self._editing:
            self.edit_batches += 1
            self._editing = True
        self.test_events.edit()
        self.test_commands.edit()
        # A rerun after an edit is not redundant.
        self._last_command = self._last_test = None

    def _add_test_run(self, event: TestRunEvent) -> None:
        self._editing = False
        self.test_events.run(
            event.event_id,
            failing=is_failing(event),
            green=is_green(event),
            named=names_tests(event.payload.failing_tests, self.targets),
            edits_so_far=self.edits,
        )
        command = tuple(event.payload.command)
        if command == self._last_test:
            self.test_reruns += 1
            _cite(self.rerun_ids, event.event_id)
        self._last_test = command

    def _add_command(self, event: CmdRunEvent) -> None:
        argv = tuple(event.payload.argv)
        if is_test_command(argv):
            self._editing = False
            passed = event.payload.exit_code == 0
            self.test_commands.run(
                event.event_id, not passed, passed, named=False, edits_so_far=self.edits
            )
        if argv == self._last_command:
            self.command_reruns += 1
            _cite(self.rerun_ids, event.event_id)
        self._last_command = argv

    @property
    def reruns(self) -> int:
        """Identical commands rerun with no edit between. Recorders often log one test run
        as a cmd_run and a test_run: runs are compared within their own type only."""
        return max(self.command_reruns, self.test_reruns)

    def _add_note(self, event: RationaleNoteEvent) -> None:
        self.notes += 1
        self.note_kinds.add(event.payload.kind)
        _cite(self.note_ids, event.event_id)
        if event.payload.kind == "hypothesis":
            _cite(self.hypothesis_ids, event.event_id)
        if self.first_edit is None:
            self.notes_before_edit_count += 1
            if len(self.notes_before_edit) < MAX_CITATIONS:
                self.notes_before_edit.append((event.event_id, event.payload.kind))


def names_tests(failing: Sequence[str], targets: frozenset[str]) -> bool:
    """Whether a run's failing ids name failing tests: one of the QA targets when known,
    else a test node id (`path::name`). A module that failed to import (a collection error
    such as ModuleNotFoundError, listed as a bare path) names no test."""
    if targets:
        return any(test_id in targets for test_id in failing)
    return any("::" in test_id for test_id in failing)


def _cite(ids: list[str], event_id: str) -> None:
    if len(ids) < MAX_CITATIONS:
        ids.append(event_id)


def gather_evidence(events: Iterable[Event], targets: Iterable[str] = ()) -> EvidenceAccumulator:
    evidence = EvidenceAccumulator(targets=frozenset(targets))
    for event in events:
        evidence.add(event)
    return evidence


@dataclass
class _Score:
    points: int = 0
    reasons: list[str] = field(default_factory=list)
    cited: list[str] = field(default_factory=list)

    def add(self, points: int, reason: str, *event_ids: str | None) -> None:
        self.points += points
        ids = [i for i in event_ids if i]
        self.reasons.append(f"{reason} ({'+' if points >= 0 else ''}{points})")
        for event_id in ids:
            if event_id not in self.cited and len(self.cited) < MAX_CITATIONS:
                self.cited.append(event_id)

    def final(self, dimension: str, cap: int = 5) -> DimensionScore:
        score = max(0, min(cap, self.points))
        rationale = "; ".join(self.reasons) or "no evidence for this dimension"
        return DimensionScore(
            dimension=dimension,
            score=score,
            rationale=f"{rationale}. Score {score}.",
            cited_event_ids=self.cited,
        )


def _problem_understanding(ev: EvidenceAccumulator) -> DimensionScore:
    s = _Score()
    before = ev.notes_before_edit
    if before:
        count = ev.notes_before_edit_count
        s.add(2, f"{count} rationale note(s) before the first edit", before[0][0])
        kinds = {kind for _, kind in before}
        if len(kinds) >= 2:
            second = next(i for i, kind in before if kind != before[0][1])
            s.add(1, "notes of more than one kind before the first edit", second)
    else:
        s.add(0, "no rationale note before the first edit")
    if ev.tests.reproduction:
        s.add(2, "the failure was reproduced by a failing test run first", ev.tests.reproduction)
    else:
        s.add(0, "no failing test run before the first edit")
    return s.final("problem_understanding", cap=5 if ev.edits else 1)


def _diagnosis(ev: EvidenceAccumulator, metrics: dict[str, Any]) -> DimensionScore:
    s = _Score()
    reasoning = [i for i, kind in ev.notes_before_edit if kind in ("hypothesis", "observation")]
    if reasoning:
        s.add(2, "a hypothesis or observation preceded the first edit", *reasoning[:2])
    if ev.hypothesis_ids:
        s.add(1, "an explicit hypothesis was stated", ev.hypothesis_ids[0])
    if ev.tests.named_reproduction:
        s.add(1, "the reproduction named the failing tests", ev.tests.named_reproduction)
    changed = metrics["lines_added"] + metrics["lines_removed"]
    if ev.edits and metrics["files_touched"] <= FOCUSED_MAX_FILES and changed <= FOCUSED_MAX_LINES:
        s.add(
            1,
            f"a focused change ({metrics['files_touched']} file(s), {changed} lines)",
            ev.first_edit,
        )
    if not s.reasons:
        s.add(0, "no stated cause and no focused change")
    return s.final("diagnosis", cap=5 if ev.edits else 1)


def _fix_correctness(ev: EvidenceAccumulator, qa: QAReport | None) -> DimensionScore:
    s = _Score()
    # The QA verdict is about the final code: cite the commit and the last green run.
    green = ev.tests.green_after_last_edit
    final = (ev.last_commit.event_id if ev.last_commit else None, green)
    if qa is not None and qa.verdict == "resolved":
        if qa.pass_to_fail:
            s.add(3, f"QA resolved but {len(qa.pass_to_fail)} test(s) went PASS_TO_FAIL", *final)
        else:
            s.add(5, f"QA resolved: {len(qa.fail_to_pass)} FAIL_TO_PASS, no PASS_TO_FAIL", *final)
    elif qa is not None and qa.verdict == "unresolved":
        if qa.blocking_flags:
            codes = ", ".join(sorted({flag.code for flag in qa.blocking_flags}))
            s.add(1, f"QA unresolved: the fix's tests or test run were flagged ({codes})", *final)
        elif qa.fail_to_pass:
            s.add(2, f"QA unresolved; {len(qa.fail_to_pass)} FAIL_TO_PASS (partial)", *final)
        elif qa.pass_to_fail:
            s.add(0, f"QA unresolved; {len(qa.pass_to_fail)} test(s) went PASS_TO_FAIL", *final)
        elif qa.fail_to_fail:
            s.add(1, f"QA unresolved: {len(qa.fail_to_fail)} target test(s) still fail", *final)
        else:
            s.add(
                1,
                "QA unresolved: no test failed on the base snapshot, so QA saw no "
                "failure for the fix to resolve",
                *final,
            )
    else:
        why = "QA could not decide" if qa is not None else "no QA run"
        if green:
            s.add(3, f"{why}; the developer's tests passed after the last edit", green)
        else:
            s.add(1, f"{why}; no passing test run after the last edit")
    return s.final("fix_correctness")


def _test_discipline(ev: EvidenceAccumulator) -> DimensionScore:
    s = _Score()
    tests = ev.tests
    if not tests.runs:
        s.add(0, "no tests were run")
        return s.final("test_discipline")
    s.add(1, f"{tests.runs} test run(s) from {tests.source}", *tests.ids[:1])
    if tests.reproduction:
        s.add(2, "a failing test run preceded the first edit", tests.reproduction)
    if tests.green_after_last_edit:
        s.add(1, "an all-passing run followed the last edit", tests.green_after_last_edit)
    if ev.edit_batches and tests.tested_batches * 2 >= ev.edit_batches:
        s.add(1, f"{tests.tested_batches} of {ev.edit_batches} edit batches were tested")
    return s.final("test_discipline")


def _efficiency(ev: EvidenceAccumulator, metrics: dict[str, Any]) -> DimensionScore:
    s = _Score()
    if not ev.edits:
        s.add(0, "no edit was made")
        return s.final("efficiency")
    s.add(5, "start from a direct path")
    per_file = metrics["file_edits"] / max(1, metrics["files_touched"])
    if per_file > 6:
        s.add(-2, f"{per_file:.1f} edits per file touched (churn)", ev.first_edit)
    elif per_file > 3:
        s.add(-1, f"{per_file:.1f} edits per file touched", ev.first_edit)
    commands = metrics["commands"]
    if commands >= 3 and metrics["commands_failed"] * 2 > commands:
        s.add(-1, f"{metrics['commands_failed']} of {commands} commands failed")
    if ev.reruns >= 2:
        s.add(-1, f"{ev.reruns} reruns of the same command with no edit between", *ev.rerun_ids)
    changed = metrics["lines_added"] + metrics["lines_removed"]
    if changed > CHURN_MAX_LINES:
        s.add(-1, f"{changed} lines changed")
    return s.final("efficiency")


def _communication(ev: EvidenceAccumulator) -> DimensionScore:
    s = _Score()
    if ev.notes >= 3:
        s.add(2, f"{ev.notes} rationale notes", *ev.note_ids[:3])
    elif ev.notes:
        s.add(1, f"{ev.notes} rationale note(s)", *ev.note_ids)
    else:
        s.add(0, "no rationale notes")
    if len(ev.note_kinds) >= 2:
        s.add(1, f"notes of {len(ev.note_kinds)} kinds ({', '.join(sorted(ev.note_kinds))})")
    if ev.last_commit is not None:
        commit = ev.last_commit
        s.add(1, "the work was committed", commit.event_id)
        subject, _, body = commit.payload.message.partition("\n\n")
        if body.strip() and "\n" not in subject.strip():
            s.add(1, "the commit message has a subject and an explaining body", commit.event_id)
    return s.final("communication")


def score_offline(
    document: TraceDocument, qa: QAReport | None, rubric: Rubric, metrics: dict[str, Any]
) -> JudgeResult:
    # The tests QA is about: those it saw fixed and its target tests (fixed or not).
    targets = [*qa.fail_to_pass, *qa.target_tests] if qa is not None else []
    evidence = gather_evidence(document.events, targets)
    by_id = {
        "problem_understanding": _problem_understanding(evidence),
        "diagnosis": _diagnosis(evidence, metrics),
        "fix_correctness": _fix_correctness(evidence, qa),
        "test_discipline": _test_discipline(evidence),
        "efficiency": _efficiency(evidence, metrics),
        "communication": _communication(evidence),
    }
    scores = [by_id[dimension.id] for dimension in rubric.dimensions]
    return JudgeResult(
        trace_id=document.trace_id,
        judge=OFFLINE_JUDGE,
        rubric_version=rubric.version,
        status="ok",
        overall=rubric.weighted_overall({s.dimension: s.score for s in scores}),
        scores=scores,
        qa_verdict=qa.verdict if qa else None,
        summary="Scored by documented heuristics from the trace and QA report (no model)."
        + _state_note(document),
    )


def _state_note(document: TraceDocument) -> str:
    """The heuristics score the recorded events; say when those are not the whole story."""
    state = document.state_check
    if state is None or state.status != "state_mismatch":
        return ""
    return f" The recorded edits do not reproduce the final snapshot ({state.headline()})."
