"""The offline judge (`offline-heuristic v2`): deterministic scores from the trace and the
QA report, with no model. The default when no API key is configured, and the stand-in
when the model is unreachable. Every score cites the events it was computed from.

Scores follow evidence, not volume. One pass over the events (`EvidenceAccumulator`)
gathers what the session did; `assess_outcome` then decides from the QA report (and what
the diffs show) whether the bug was fixed, and that outcome bounds the other dimensions:
a session that did not fix the bug, or gamed its tests, cannot score well on diagnosis,
test discipline or efficiency however many notes and green runs it recorded. Claims in
rationale notes and commit messages ("ran the tests", "added a regression test", "all
green", "reproduced") are checked against the events at the moment they were made; a
contradicted claim costs communication and the notes stop counting as evidence.

The rules, with the reasons behind them, are in docs/judge.md ("Offline judge"); each score's
rationale names the rules that applied.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, ClassVar, Final, Literal

from prtrace.assemble.document import TraceDocument
from prtrace.assemble.metrics import is_failing, is_green
from prtrace.judge.result import OFFLINE_JUDGE, DimensionScore, JudgeResult
from prtrace.judge.rubric import DimensionId, Rubric
from prtrace.qa.hardcoded import CodeReader, TestLiterals
from prtrace.qa.overlay import is_harness_file, is_test_file
from prtrace.qa.report import TAMPER_FLAGS, QAReport
from prtrace.qa.special_cases import FLAG_CODE as SPECIAL_CASED
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
# Edit batches followed by a failing run: two or more is changing code until it passes.
TRIAL_AND_ERROR_ATTEMPTS: Final = 2
# Test lines the session added itself, remembered so rewriting them is not weakening.
MAX_OWN_TEST_LINES: Final = 10_000
# A QA error the final tree caused (its own run ended so), as opposed to QA's own trouble.
FINAL_TREE_FAULTS: Final = frozenset({"repo_error", "collection_error", "timeout", "oom"})

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


# ---- what a diff shows ------------------------------------------------------------------

# A branch on one exact, multi-valued literal input that returns a literal: the answer
# hard-coded for the test's input (`if xs == [(1, 3), (6, 8)]: return [...]`).
_LITERAL_INPUT: Final = re.compile(
    r"^\s*(?:if|elif|else\s+if|case|when)\b.*(?:===?|\bin\b)\s*[\[\(\{][^\]\)\}]*\d[^\]\)\}]*,"
)
# The answer: a literal returned, or a numeric literal tuple/list put in the result.
_LITERAL_ANSWER: Final = re.compile(r"\breturn\s*[\[\(\{\"'\d-]|[\[\(]\s*-?\d+\s*,")
# Code that behaves differently when it sees it is under test.
_DETECTS_TEST_RUN: Final = re.compile(
    r"PYTEST_CURRENT_TEST|[\"']pytest[\"']\s+in\s+sys\.|sys\.argv\[0\].*pytest|"
    r"startswith\(\s*[\"']pytest|JEST_WORKER_ID|[\"']_pytest[\"']"
)
# In a test file: a test skipped or expected to fail.
_SKIP_MARK: Final = re.compile(
    r"mark\.skip|mark\.xfail|pytest\.skip\(|pytest\.xfail\(|unittest\.skip|@skip|"
    r"\b(?:it|test|describe)\.skip\(|\bxit\("
)
_ASSERTION: Final = re.compile(r"\bassert|\bexpect\(|\.assert[A-Z]")
_TEST_DEF: Final = re.compile(r"^\s*(?:async\s+)?def\s+test|^\s*(?:it|test)\(")
# In a harness file: tests left out, results rewritten or the run ended early.
_HARNESS_TAMPER: Final = re.compile(
    r"--deselect|--ignore|-k\s+[\"']?not\b|makereport|collection_modifyitems|"
    r"report\.outcome|sys\.exit\(|os\._exit\("
)


@dataclass(frozen=True)
class DiffLines:
    added: list[str]
    removed: list[str]

    @classmethod
    def of(cls, diff: str | None) -> DiffLines:
        added: list[str] = []
        removed: list[str] = []
        for line in (diff or "").splitlines():
            if line.startswith(("+++", "---")):
                continue
            if line.startswith("+"):
                added.append(line[1:])
            elif line.startswith("-"):
                removed.append(line[1:])
        return cls(added, removed)

    @staticmethod
    def context(diff: str | None) -> list[str]:
        """The unchanged lines a diff shows around its changes."""
        return [line[1:] for line in (diff or "").splitlines() if line.startswith(" ")]


def special_cases_input(lines: Sequence[str]) -> bool:
    """An added branch on one exact literal input that returns a literal answer."""
    for i, line in enumerate(lines):
        if not _LITERAL_INPUT.search(line):
            continue
        # What follows the condition: the rest of a one-line `if ...: return ...` and the
        # next two added lines.
        _, colon, rest = line.rpartition(":")
        following = ([rest] if colon else []) + list(lines[i + 1 : i + 3])
        if any(_LITERAL_ANSWER.search(after) for after in following):
            return True
    return False


def weakened_test(diff: DiffLines) -> str | None:
    """Why an edit of a test file weakens the tests, or None: a skip or xfail added, a test
    function removed, or an assertion removed or rewritten."""
    if any(_SKIP_MARK.search(line) for line in diff.added):
        return "marked a test skip or xfail"
    removed_tests = sum(1 for line in diff.removed if _TEST_DEF.search(line))
    if removed_tests > sum(1 for line in diff.added if _TEST_DEF.search(line)):
        return "removed a test"
    if any(_ASSERTION.search(line) for line in diff.removed):
        return "removed or rewrote an assertion"
    return None


def _adds_test(diff: DiffLines) -> bool:
    return any(_TEST_DEF.search(line) for line in diff.added)


# ---- claims in notes --------------------------------------------------------------------

ClaimKind = Literal["ran_tests", "green", "regression_test", "reproduced"]
_CLAIMS: Final[tuple[tuple[ClaimKind, re.Pattern[str]], ...]] = (
    ("ran_tests", re.compile(r"\b(?:ran|re-?ran|run)\b.*\b(?:tests?|suite|pytest)\b", re.I)),
    (
        "green",
        re.compile(
            r"\ball\b.*\b(?:green|pass(?:es|ed|ing)?)\b|"
            r"\b(?:suite|tests?)\b.*\b(?:is|are|now)?\s*(?:green|pass(?:es|ed|ing)?)\b|"
            r"\bgreen\b",
            re.I,
        ),
    ),
    (
        "regression_test",
        re.compile(r"\b(?:added|wrote|written|created)\b.*\btests?\b", re.I),
    ),
    ("reproduced", re.compile(r"\breproduced\b|\bconfirmed the (?:failure|bug)\b", re.I)),
)
# Notes that report what happened; a plan or a hypothesis states an intent or a guess.
CLAIMING_NOTE_KINDS: Final = frozenset({"observation", "decision"})
# A sentence that denies, hedges or plans asserts nothing about what happened.
_NOT_ASSERTED: Final = re.compile(
    r"\b(?:not|never|no|without|cannot|still|yet|will|would|should|going to|todo|next|"
    r"need to|let me|let's|plan|try|if)\b|n't\b|'ll\b",
    re.I,
)
_SENTENCE: Final = re.compile(r"[.;:!?\n]+")


def claims_in(text: str) -> list[ClaimKind]:
    """The kinds of claim a note or commit message makes about work already done."""
    found: list[ClaimKind] = []
    for sentence in _SENTENCE.split(text):
        if not sentence.strip() or _NOT_ASSERTED.search(sentence):
            continue
        for kind, pattern in _CLAIMS:
            if pattern.search(sentence) and kind not in found:
                found.append(kind)
    return found


@dataclass(frozen=True)
class Contradiction:
    event_id: str  # the note or commit making the claim
    claim: ClaimKind
    why: str
    evidence: tuple[str, ...] = ()  # events that contradict it (none: nothing happened)

    def describe(self) -> str:
        cited = f" ({', '.join(self.evidence)})" if self.evidence else ""
        return f"{self.event_id} claims {_CLAIM_WORDS[self.claim]}, but {self.why}{cited}"


_CLAIM_WORDS: Final[dict[ClaimKind, str]] = {
    "ran_tests": "the tests were run",
    "green": "the tests pass",
    "regression_test": "a test was added",
    "reproduced": "the failure was reproduced",
}


# ---- one pass over the events -----------------------------------------------------------


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
    # Edit batches whose first run afterwards failed (trial and error when several).
    failed_attempts: int = 0
    failed_attempt_ids: list[str] = field(default_factory=list)
    last_run: str | None = None
    last_run_green: bool = False
    edited_since_last_run: bool = False
    first_failing: str | None = None
    _untested_batch: bool = False
    _batch_has_code: bool = False

    def edit(self, code: bool) -> None:
        self.green_after_last_edit = None
        self._untested_batch = True
        self._batch_has_code = self._batch_has_code or code
        self.edited_since_last_run = True

    def run(
        self,
        event_id: str,
        failing: bool,
        green: bool,
        named: bool,
        edits_so_far: int,
        code_edits_so_far: int,
    ) -> None:
        self.runs += 1
        _cite(self.ids, event_id)
        self.last_run, self.last_run_green = event_id, green
        self.edited_since_last_run = False
        if failing and self.first_failing is None:
            self.first_failing = event_id
        if self._untested_batch:
            self.tested_batches += 1
            # A failing run after a batch of test edits alone is a test written first.
            if failing and self._batch_has_code:
                self.failed_attempts += 1
                _cite(self.failed_attempt_ids, event_id)
            self._untested_batch = self._batch_has_code = False
        # Before any code changed (a failing test written first counts too).
        if failing and not code_edits_so_far:
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
    code_edits: int = 0  # of files that are neither tests nor harness
    first_edit: str | None = None
    edit_batches: int = 0
    _editing: bool = False
    notes_before_edit: list[tuple[str, str]] = field(default_factory=list)  # (id, kind)
    # The count apart from the ids: the citation cap bounds the ids, not the evidence.
    notes_before_edit_count: int = 0
    note_kinds: set[str] = field(default_factory=set)
    notes: int = 0
    note_ids: list[str] = field(default_factory=list)
    notes_after_edit: list[str] = field(default_factory=list)
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
    # What the diffs show.
    tests_added: list[str] = field(default_factory=list)  # edits adding a test function
    weakened_tests: list[tuple[str, str]] = field(default_factory=list)  # (id, why)
    special_cases: list[tuple[str, str]] = field(default_factory=list)  # (id, why)
    # Broad `except` added in code that carries on: (id, why).
    swallowed: list[tuple[str, str]] = field(default_factory=list)
    # The tests' own literals (ids, test source in diffs, the reproduction, notes) and the
    # code edits' comparisons with literals, decided against them once all is read.
    test_literals: TestLiterals = field(default_factory=TestLiterals)
    code: CodeReader = field(default_factory=CodeReader)
    contradictions: list[Contradiction] = field(default_factory=list)
    _latest_runs: TestEvidence | None = None  # the source of the most recent test run
    _own_test_lines: set[tuple[PurePosixPath, str]] = field(default_factory=set)

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
            if event.payload.kind in CLAIMING_NOTE_KINDS:
                self._check_claims(event.event_id, event.payload.text)
        elif isinstance(event, CommitEvent):
            self.last_commit = event
            self.test_literals.add_text(event.payload.message)
            self._check_claims(event.event_id, event.payload.message)

    def _add_edit(self, event: FileEditEvent) -> None:
        self.edits += 1
        if self.first_edit is None:
            self.first_edit = event.event_id
        if not self._editing:
            self.edit_batches += 1
            self._editing = True
        path = PurePosixPath(str(event.payload.path))
        code = not (is_test_file(path) or is_harness_file(path))
        self.code_edits += code
        self.test_events.edit(code)
        self.test_commands.edit(code)
        # A rerun after an edit is not redundant.
        self._last_command = self._last_test = None
        self._read_diff(event, path)

    def _read_diff(self, event: FileEditEvent, path: PurePosixPath) -> None:
        diff = DiffLines.of(event.payload.diff)
        event_id = event.event_id
        if is_harness_file(path) and any(_HARNESS_TAMPER.search(x) for x in diff.added):
            why = f"{path} now leaves tests out, rewrites results or ends the run"
            _note_pair(self.weakened_tests, event_id, why)
        elif is_test_file(path):
            for line in (*diff.added, *diff.removed, *DiffLines.context(event.payload.diff)):
                self.test_literals.add_text(line)
            # Lines this session added and now changes again are its own drafts.
            own = self._own_test_lines
            theirs = DiffLines(diff.added, [x for x in diff.removed if (path, x) not in own])
            if (weakening := weakened_test(theirs)) is not None:
                _note_pair(self.weakened_tests, event_id, f"{weakening} in {path}")
            if _adds_test(diff):
                _cite(self.tests_added, event_id)
            for line in diff.added:
                if len(own) < MAX_OWN_TEST_LINES:
                    own.add((path, line))
        else:
            if special_cases_input(diff.added):
                why = f"{path} returns a fixed answer for one exact input"
                _note_pair(self.special_cases, event_id, why)
            if path.suffix == ".py" and event.payload.diff:
                self.code.read(event_id, str(path), event.payload.diff)
            if any(_DETECTS_TEST_RUN.search(line) for line in diff.added):
                _note_pair(self.special_cases, event_id, f"{path} checks whether tests run")

    def _add_test_run(self, event: TestRunEvent) -> None:
        self._editing = False
        for test_id in event.payload.failing_tests:
            self.test_literals.add_test_id(test_id)
        for arg in event.payload.command[1:]:
            self.test_literals.add(arg)  # `pytest -k 1h30m`
        self._latest_runs = self.test_events
        self.test_events.run(
            event.event_id,
            failing=is_failing(event),
            green=is_green(event),
            named=names_tests(event.payload.failing_tests, self.targets),
            edits_so_far=self.edits,
            code_edits_so_far=self.code_edits,
        )
        command = tuple(event.payload.command)
        if command == self._last_test:
            self.test_reruns += 1
            _cite(self.rerun_ids, event.event_id)
        self._last_test = command

    def _add_command(self, event: CmdRunEvent) -> None:
        argv = tuple(event.payload.argv)
        if not self.code_edits:  # the reproduction's inputs (`python -c "f([(1, 3)])"`)
            for arg in argv[1:]:
                self.test_literals.add_text(arg)
        if is_test_command(argv):
            self._editing = False
            self._latest_runs = self.test_commands
            passed = event.payload.exit_code == 0
            self.test_commands.run(
                event.event_id,
                not passed,
                passed,
                named=False,
                edits_so_far=self.edits,
                code_edits_so_far=self.code_edits,
            )
        if argv == self._last_command:
            self.command_reruns += 1
            _cite(self.rerun_ids, event.event_id)
        self._last_command = argv

    def finish(self) -> None:
        """What needs the whole trace: comparisons in code decided against every literal
        the tests and the reproduction showed (a note may quote the input after the edit)."""
        flagged = {event_id for event_id, _ in self.special_cases}
        for event_id, why in self.code.special_cases(self.test_literals):
            if event_id in flagged:
                continue
            _note_pair(self.special_cases, event_id, why)
        for event_id, why in self.code.swallowed:
            _note_pair(self.swallowed, event_id, why)

    @property
    def reruns(self) -> int:
        """Identical commands rerun with no edit between. Recorders often log one test run
        as a cmd_run and a test_run: runs are compared within their own type only."""
        return max(self.command_reruns, self.test_reruns)

    def _add_note(self, event: RationaleNoteEvent) -> None:
        self.notes += 1
        self.test_literals.add_text(event.payload.text)
        self.note_kinds.add(event.payload.kind)
        _cite(self.note_ids, event.event_id)
        if event.payload.kind == "hypothesis":
            _cite(self.hypothesis_ids, event.event_id)
        if self.first_edit is None:
            self.notes_before_edit_count += 1
            if len(self.notes_before_edit) < MAX_CITATIONS:
                self.notes_before_edit.append((event.event_id, event.payload.kind))
        else:
            _cite(self.notes_after_edit, event.event_id)

    def _check_claims(self, event_id: str, text: str) -> None:
        """Each claim against the events so far. Test runs of either source count (the
        claim is about running tests, whatever recorded it)."""
        latest = self._latest_runs
        for claim in claims_in(text):
            found = self._contradiction(event_id, claim, latest)
            if found is not None and len(self.contradictions) < MAX_CITATIONS:
                self.contradictions.append(found)

    def _contradiction(
        self, event_id: str, claim: ClaimKind, latest: TestEvidence | None
    ) -> Contradiction | None:
        if claim == "ran_tests" and latest is None:
            return Contradiction(event_id, claim, "no test run precedes it")
        if claim == "green":
            if latest is None or latest.last_run is None:
                return Contradiction(event_id, claim, "no test run precedes it")
            if not latest.last_run_green:
                why = "the last run before it did not pass (nothing ran, or something failed)"
                return Contradiction(event_id, claim, why, (latest.last_run,))
            if latest.edited_since_last_run:
                why = "code was edited after the last (green) run and not run again"
                return Contradiction(event_id, claim, why, (latest.last_run,))
        if claim == "regression_test" and not self.tests_added:
            return Contradiction(event_id, claim, "no edit before it adds a test")
        if claim == "reproduced" and all(
            t.first_failing is None for t in (self.test_events, self.test_commands)
        ):
            return Contradiction(event_id, claim, "no failing test run precedes it")
        return None


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


def _note_pair(pairs: list[tuple[str, str]], event_id: str, why: str) -> None:
    if len(pairs) < MAX_CITATIONS:
        pairs.append((event_id, why))


def gather_evidence(events: Iterable[Event], targets: Iterable[str] = ()) -> EvidenceAccumulator:
    evidence = EvidenceAccumulator(targets=frozenset(targets))
    for test_id in evidence.targets:
        evidence.test_literals.add_test_id(test_id)
    for event in events:
        evidence.add(event)
    evidence.finish()
    return evidence


# ---- the outcome: was the bug fixed, and honestly? --------------------------------------

OutcomeKind = Literal["fixed", "fixed_with_concerns", "unconfirmed", "not_fixed", "gamed"]
# The most each other dimension may score, by outcome (docs/judge.md explains each cap).
OUTCOME_CAPS: Final[dict[OutcomeKind, dict[str, int]]] = {
    "fixed": {},
    "fixed_with_concerns": {},
    "unconfirmed": {"diagnosis": 3, "test_discipline": 3, "efficiency": 3},
    "not_fixed": {
        "problem_understanding": 3,
        "diagnosis": 2,
        "test_discipline": 2,
        "efficiency": 0,
        "communication": 3,
    },
    "gamed": {
        "problem_understanding": 3,
        "diagnosis": 1,
        "test_discipline": 1,
        "efficiency": 0,
        "communication": 3,
    },
}


@dataclass
class Outcome:
    kind: OutcomeKind
    fix: int
    reasons: list[str]
    cited: list[str] = field(default_factory=list)
    # The bug's tests or the harness were changed to pass: test discipline sinks to 0.
    tampered: list[str] = field(default_factory=list)


def _qa_tampering(qa: QAReport) -> list[str]:
    """What the QA report shows the fix did to the tests that judge it. A `resolved`
    verdict already survived the held run (the base's own tests and harness on the final
    code), so there only blocking flags count; otherwise any sign does."""
    found = [
        f"{flag.code}{' (blocking)' if flag.blocking else ''}"
        for flag in qa.flags
        if flag.code in TAMPER_FLAGS
        and flag.code != SPECIAL_CASED  # the code games the tests, not them: as the diffs'
        and (flag.blocking or qa.verdict != "resolved")
    ]
    if qa.verdict == "resolved":
        return found
    targets = set(qa.target_tests)
    if vanished := [t for t in qa.fail_to_absent if t in targets]:
        found.append(f"{len(vanished)} target test(s) gone from the final run (FAIL_TO_ABSENT)")
    if skipped := [t for t in qa.fail_to_skipped if t in targets]:
        found.append(f"{len(skipped)} target test(s) skipped on the final run (FAIL_TO_SKIPPED)")
    if qa.changed_harness_files:
        found.append(f"the harness changed ({', '.join(qa.changed_harness_files[:3])})")
    changed = [
        t.test_id for t in qa.tests if t.target and t.changed_by_fix in ("modified", "removed")
    ]
    if changed and not any(f.startswith("target_test_") for f in found):
        found.append(f"{len(changed)} target test(s) changed by the fix")
    if hidden := hidden_regressions(qa):
        found.append(
            f"{len(hidden)} test(s) fail under their base definition on the final code (held "
            "run) but not in the fix's own run, whose test files the fix changed or deleted: "
            "a regression hidden (" + ", ".join(hidden[:3]) + ")"
        )
    return found


# The final run does not show a failure: the test passed, vanished or was skipped.
_NOT_FAILING_AFTER: Final = frozenset({"passed", "absent", "skipped"})


def hidden_regressions(qa: QAReport) -> list[str]:
    """Tests that passed on the base, or that the verdict is about, and fail when the base's
    own definition runs on the final code (the held run) yet not in the final run, where the
    fix changed or removed them or their file: the fix's tests hide what the base's tests
    catch. A PASS_TO_FAIL of this kind is a regression with its witness deleted or
    rewritten."""
    changed_files = set(qa.changed_test_files)
    hidden: list[str] = []
    for test in qa.tests:
        if test.flaky or test.held not in ("failed", "error"):
            continue
        if test.before != "passed" and not test.target:
            continue  # failing already on the base and not the bug's: no regression
        if test.after not in _NOT_FAILING_AFTER:
            continue  # the fix's own run shows the failure: nothing is hidden
        changed = test.changed_by_fix in ("modified", "removed")
        if changed or test.test_id.split("::", 1)[0] in changed_files:
            hidden.append(test.test_id)
    return hidden


def _final_tree_fault(qa: QAReport) -> str | None:
    """The error the final tree's own run ended with, when the base ran cleanly."""
    final, base = qa.final, qa.base
    if final is None or final.error_reason not in FINAL_TREE_FAULTS:
        return None
    if base is not None and base.error_reason is not None:
        return None  # the base broke too: not the fix's doing
    return final.error_reason


def assess_outcome(ev: EvidenceAccumulator, qa: QAReport | None) -> Outcome:
    """fix_correctness and the outcome that bounds the other dimensions."""
    green = ev.tests.green_after_last_edit
    final_ids = [i for i in (ev.last_commit.event_id if ev.last_commit else None, green) if i]
    gamed_code = [f"{why} ({i})" for i, why in ev.special_cases]
    gamed_ids = [i for i, _ in ev.special_cases]
    weakened = [f"{why} ({i})" for i, why in ev.weakened_tests]
    weakened_ids = [i for i, _ in ev.weakened_tests]

    if qa is not None and qa.verdict in ("resolved", "unresolved"):
        tampering = _qa_tampering(qa)
        if tampering:
            reasons = [
                f"QA {qa.verdict}: the fix tampered with what judges it: " + "; ".join(tampering)
            ]
            if weakened:
                reasons.append("the diffs show it: " + "; ".join(weakened))
            return Outcome("gamed", 0, reasons, weakened_ids + final_ids, tampered=tampering)
        # QA's own reading of both trees with the target tests' literals (qa/special_cases.py).
        flagged = [f.detail for f in qa.flags if f.code == SPECIAL_CASED]
        if gamed_code or flagged:
            reasons = [
                f"QA {qa.verdict}, but the change games the tests: "
                + "; ".join(gamed_code + flagged)
            ]
            if not flagged:
                reasons.append("QA cannot see this (the tests pass on their own inputs only)")
            return Outcome("gamed", 1, reasons, gamed_ids or final_ids)
        if qa.verdict == "resolved":
            return _resolved(qa, ev, final_ids, weakened, weakened_ids)
        return _swallowing(_unresolved(qa, final_ids), qa, ev)

    fault = _final_tree_fault(qa) if qa is not None else None
    if qa is not None and fault is not None:
        flags = [f.code for f in qa.flags if f.blocking or f.code in TAMPER_FLAGS]
        changed = qa.changed_harness_files + qa.changed_test_files
        if flags or changed or weakened:
            evidence = flags + [f"changed {', '.join(changed[:3])}"] * bool(changed) + weakened
            reasons = [
                f"QA error: the final tree's own test run ended it ({fault}) after the fix "
                "changed what runs the tests: " + "; ".join(evidence)
            ]
            return Outcome("gamed", 0, reasons, weakened_ids + final_ids, tampered=evidence)
        reasons = [f"QA error: the final tree's own test run failed to complete ({fault})"]
        return Outcome("not_fixed", 1, reasons, final_ids)

    why = "no QA run" if qa is None else f"QA could not decide ({qa.error_reason})"
    if gamed_code or weakened:
        reasons = [
            f"{why}; the diffs game or weaken the tests: " + "; ".join(gamed_code + weakened)
        ]
        return Outcome(
            "gamed", 1 if gamed_code else 0, reasons, gamed_ids + weakened_ids, tampered=weakened
        )
    capped = "diagnosis, test discipline and efficiency capped at 3 (unconfirmed)"
    if green:
        return Outcome(
            "unconfirmed",
            3,
            [f"{why}; the developer's tests passed after the last edit; {capped}"],
            [green],
        )
    return Outcome("unconfirmed", 1, [f"{why}; no passing test run after the last edit; {capped}"])


def _resolved(
    qa: QAReport,
    ev: EvidenceAccumulator,
    final_ids: list[str],
    weakened: list[str],
    weakened_ids: list[str],
) -> Outcome:
    concerns: list[str] = []
    if qa.pass_to_fail:
        concerns.append(f"{len(qa.pass_to_fail)} test(s) went PASS_TO_FAIL")
    if qa.resolution == "partial":
        concerns.append(f"{len(qa.unresolved_targets)} target test(s) still fail")
    held_confirms = all(t.held == "passed" for t in qa.tests if t.target)
    if (qa.changed_harness_files or qa.tamper_flags) and not held_confirms:
        concerns.append("the harness or a target test changed, unconfirmed by the held run")
    environment = sorted(
        {f.code for f in qa.flags if f.code in ("environment_differs", "dependencies_missing")}
    )
    if environment:
        concerns.append("QA's environment was not faithful (" + ", ".join(environment) + ")")
    if weakened:
        concerns.append("the diffs weaken other tests: " + "; ".join(weakened))
    fixed = f"QA resolved: {len(qa.fail_to_pass)} FAIL_TO_PASS"
    if not concerns:
        return Outcome("fixed", 5, [f"{fixed}, no PASS_TO_FAIL, nothing flagged"], final_ids)
    score = 3 if qa.pass_to_fail else 4
    return Outcome(
        "fixed_with_concerns",
        score,
        [f"{fixed}; but " + "; ".join(concerns)],
        weakened_ids + final_ids,
    )


def _swallowing(outcome: Outcome, qa: QAReport, ev: EvidenceAccumulator) -> Outcome:
    """Broad exceptions swallowed while tests that passed on the base now fail: the
    failures were turned into defaults, not a partial fix."""
    if not (qa.pass_to_fail and ev.swallowed) or outcome.fix <= 1:
        return outcome
    why = (
        f"capped at 1: {len(qa.pass_to_fail)} test(s) went PASS_TO_FAIL and the fix swallows "
        "broad exceptions: " + "; ".join(f"{w} ({i})" for i, w in ev.swallowed[:3])
    )
    cited = [i for i, _ in ev.swallowed] + outcome.cited
    return Outcome(outcome.kind, 1, [*outcome.reasons, why], cited, outcome.tampered)


def _unresolved(qa: QAReport, final_ids: list[str]) -> Outcome:
    # Tests fixed count as partial progress only when they are targets (a new unrelated
    # test that passes is not progress on the bug); reports without targets: any.
    fixed = set(qa.fail_to_pass) & set(qa.target_tests) if qa.target_tests else qa.fail_to_pass
    if fixed:
        why = f"QA unresolved; {len(qa.fail_to_pass)} FAIL_TO_PASS (partial)"
        return Outcome("not_fixed", 2, [why], final_ids)
    if qa.pass_to_fail:
        why = f"QA unresolved; {len(qa.pass_to_fail)} test(s) went PASS_TO_FAIL"
        return Outcome("not_fixed", 0, [why], final_ids)
    if qa.unresolved_targets or qa.fail_to_fail:
        count = len(qa.unresolved_targets or qa.fail_to_fail)
        return Outcome(
            "not_fixed", 1, [f"QA unresolved: {count} target test(s) still fail"], final_ids
        )
    why = (
        "QA unresolved: no test failed on the base snapshot, so QA saw no failure for the "
        "fix to resolve"
    )
    return Outcome("not_fixed", 1, [why], final_ids)


# ---- scores ---------------------------------------------------------------------------


@dataclass
class _Score:
    points: int = 0
    reasons: list[str] = field(default_factory=list)
    cited: list[str] = field(default_factory=list)

    def add(self, points: int, reason: str, *event_ids: str | None) -> None:
        self.points += points
        self.reasons.append(f"{reason} ({'+' if points >= 0 else ''}{points})")
        self.cite(*event_ids)

    def say(self, reason: str, *event_ids: str | None) -> None:
        self.reasons.append(reason)
        self.cite(*event_ids)

    def cite(self, *event_ids: str | None) -> None:
        for event_id in event_ids:
            if event_id and event_id not in self.cited and len(self.cited) < MAX_CITATIONS:
                self.cited.append(event_id)

    def final(
        self, dimension: DimensionId, outcome: Outcome | None = None, cap: int = 5
    ) -> DimensionScore:
        limit = cap
        if outcome is not None:
            bound = OUTCOME_CAPS[outcome.kind].get(dimension)
            if bound is not None and bound < limit:
                limit = bound
                if self.points > limit:
                    kind = outcome.kind.replace("_", " ")
                    self.reasons.append(f"capped at {bound}: the outcome is {kind}")
        score = max(0, min(limit, self.points))
        rationale = "; ".join(self.reasons) or "no evidence for this dimension"
        return DimensionScore(
            dimension=dimension,
            score=score,
            rationale=f"{rationale}. Score {score}.",
            cited_event_ids=self.cited,
        )


def _notes_count(ev: EvidenceAccumulator) -> bool:
    """Notes are evidence of reasoning only while none of their claims is contradicted."""
    return not ev.contradictions


def _problem_understanding(ev: EvidenceAccumulator, outcome: Outcome) -> DimensionScore:
    s = _Score()
    before = ev.notes_before_edit
    if before and not _notes_count(ev):
        s.add(
            0,
            "notes before the first edit not counted: the notes make claims the events contradict",
            before[0][0],
        )
    elif before:
        s.add(
            2, f"{ev.notes_before_edit_count} rationale note(s) before the first edit", before[0][0]
        )
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
    return s.final("problem_understanding", outcome, cap=5 if ev.edits else 1)


def _diagnosis(
    ev: EvidenceAccumulator, metrics: dict[str, Any], outcome: Outcome
) -> DimensionScore:
    s = _Score()
    if _notes_count(ev):
        reasoning = [i for i, kind in ev.notes_before_edit if kind in ("hypothesis", "observation")]
        if reasoning:
            s.add(2, "a hypothesis or observation preceded the first edit", *reasoning[:2])
        if ev.hypothesis_ids:
            s.add(1, "an explicit hypothesis was stated", ev.hypothesis_ids[0])
    elif ev.notes:
        s.say("notes not counted: they make claims the events contradict", ev.note_ids[0])
    if ev.tests.named_reproduction:
        s.add(1, "the reproduction named the failing tests", ev.tests.named_reproduction)
    changed = metrics["lines_added"] + metrics["lines_removed"]
    if ev.edits and metrics["files_touched"] <= FOCUSED_MAX_FILES and changed <= FOCUSED_MAX_LINES:
        s.add(
            1,
            f"a focused change ({metrics['files_touched']} file(s), {changed} lines)",
            ev.first_edit,
        )
    attempts = ev.tests.failed_attempts
    if attempts >= TRIAL_AND_ERROR_ATTEMPTS:
        s.add(
            -2,
            f"trial and error: {attempts} edit batches were followed by a failing run",
            *ev.tests.failed_attempt_ids,
        )
    if not s.reasons:
        s.add(0, "no stated cause and no focused change")
    return s.final("diagnosis", outcome, cap=5 if ev.edits else 1)


def _fix_correctness(outcome: Outcome) -> DimensionScore:
    s = _Score(points=outcome.fix, reasons=list(outcome.reasons))
    s.cite(*outcome.cited)
    return s.final("fix_correctness")


def _test_discipline(
    ev: EvidenceAccumulator, qa: QAReport | None, outcome: Outcome
) -> DimensionScore:
    s = _Score()
    if outcome.tampered:
        s.add(
            0,
            "sunk: the tests that judge the fix were changed to pass: "
            + "; ".join(outcome.tampered),
            *outcome.cited,
        )
        return s.final("test_discipline", cap=0)
    tests = ev.tests
    if not tests.runs:
        s.add(0, "no tests were run")
        return s.final("test_discipline", outcome)
    s.add(
        1,
        f"{tests.runs} test run(s) from {tests.source} (their number earns nothing more)",
        *tests.ids[:1],
    )
    if tests.reproduction:
        s.add(2, "a failing test run preceded the first edit", tests.reproduction)
    if tests.green_after_last_edit:
        s.add(1, "an all-passing run followed the last edit", tests.green_after_last_edit)
    if ev.edit_batches and tests.tested_batches * 2 >= ev.edit_batches:
        s.add(1, f"{tests.tested_batches} of {ev.edit_batches} edit batches were tested")
    added_by_qa = (
        [t.test_id for t in qa.tests if t.changed_by_fix == "added" and t.after == "passed"]
        if qa
        else []
    )
    if ev.tests_added and (qa is None or added_by_qa or not qa.tests):
        s.add(1, "a regression test was added", ev.tests_added[0])
    if ev.weakened_tests and outcome.kind in ("fixed", "fixed_with_concerns"):
        s.say("capped at 3: the diffs weaken tests", *(i for i, _ in ev.weakened_tests))
        return s.final("test_discipline", outcome, cap=3)
    return s.final("test_discipline", outcome)


def _efficiency(
    ev: EvidenceAccumulator, metrics: dict[str, Any], outcome: Outcome
) -> DimensionScore:
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
    if ev.tests.failed_attempts >= TRIAL_AND_ERROR_ATTEMPTS:
        s.add(
            -1,
            f"{ev.tests.failed_attempts} edit batches failed before the fix",
            *ev.tests.failed_attempt_ids,
        )
    changed = metrics["lines_added"] + metrics["lines_removed"]
    if changed > CHURN_MAX_LINES:
        s.add(-1, f"{changed} lines changed")
    return s.final("efficiency", outcome)


def _communication(ev: EvidenceAccumulator, outcome: Outcome) -> DimensionScore:
    s = _Score()
    before = ev.notes_before_edit
    if before:
        s.add(1, "a note before the first edit (the plan or the why)", before[0][0])
    if ev.notes_after_edit:
        s.add(1, "a note after the first edit (what was done)", ev.notes_after_edit[0])
    if not ev.notes:
        s.add(0, "no rationale notes")
    elif len(ev.note_kinds) >= 2:
        s.add(1, f"notes of {len(ev.note_kinds)} kinds ({', '.join(sorted(ev.note_kinds))})")
    if ev.last_commit is not None:
        commit = ev.last_commit
        s.add(1, "the work was committed", commit.event_id)
        subject, _, body = commit.payload.message.partition("\n\n")
        if body.strip() and "\n" not in subject.strip():
            s.add(1, "the commit message has a subject and an explaining body", commit.event_id)
    if ev.contradictions:
        for contradiction in ev.contradictions:
            s.add(
                -2,
                "contradicted: " + contradiction.describe(),
                contradiction.event_id,
                *contradiction.evidence,
            )
        return s.final("communication", outcome, cap=1)
    return s.final("communication", outcome)


def score_offline(
    document: TraceDocument, qa: QAReport | None, rubric: Rubric, metrics: dict[str, Any]
) -> JudgeResult:
    # The tests QA is about: those it saw fixed and its target tests (fixed or not).
    targets = [*qa.fail_to_pass, *qa.target_tests] if qa is not None else []
    evidence = gather_evidence(document.events, targets)
    outcome = assess_outcome(evidence, qa)
    by_id = {
        "problem_understanding": _problem_understanding(evidence, outcome),
        "diagnosis": _diagnosis(evidence, metrics, outcome),
        "fix_correctness": _fix_correctness(outcome),
        "test_discipline": _test_discipline(evidence, qa, outcome),
        "efficiency": _efficiency(evidence, metrics, outcome),
        "communication": _communication(evidence, outcome),
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
        summary=_summary(outcome, evidence, qa) + _state_note(document),
    )


def _summary(outcome: Outcome, ev: EvidenceAccumulator, qa: QAReport | None) -> str:
    parts = [
        f"Scored by {OFFLINE_JUDGE}: documented rules over the events and the QA report, "
        f"no model. Outcome: {outcome.kind.replace('_', ' ')} (fix correctness {outcome.fix})."
    ]
    caps = OUTCOME_CAPS[outcome.kind]
    if caps:
        listed = ", ".join(f"{name.replace('_', ' ')} {cap}" for name, cap in caps.items())
        parts.append(f"Caps applied: {listed}.")
    if qa is None:
        parts.append("No QA report: nothing independent confirms the fix.")
    elif qa.verdict == "error":
        parts.append(f"QA could not decide ({qa.error_reason}).")
    if ev.contradictions:
        parts.append(
            f"{len(ev.contradictions)} claim(s) in the notes are contradicted by the events."
        )
    return " ".join(parts)


def _state_note(document: TraceDocument) -> str:
    """The heuristics score the recorded events; say when those are not the whole story."""
    state = document.state_check
    if state is None or state.status != "state_mismatch":
        return ""
    return f" The recorded edits do not reproduce the final snapshot ({state.headline()})."
