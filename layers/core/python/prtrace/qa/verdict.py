"""From per-test outcomes of QA's runs to the lists and the verdict (docs/qa.md, "The verdict").

The runs (service.py): `base` (the base snapshot as it is), `final` (the final snapshot as it
is), and, when the fix changed tests or harness, `held` (the base's own tests, conftests and
pytest configuration on the final code) and `base_with_final_tests` (the final's tests on
the base code).

Per test:
- before: the base run's outcome; for a test the base does not have, the outcome of the
  final's definition on the base code. A base-run result is never overwritten.
- after: the final run's outcome; held: the base definition's outcome on the final code
  (when the held run happened; otherwise it is the final run, which ran the same files).

Lists (flaky tests are kept in `tests` with `flaky: true` and left out of every list):
- fail_to_pass: failing before; passing after, and passing held when the base has it;
- pass_to_fail: passing before; failing, errored or gone after, or failing held;
- fail_to_fail: failing before, still failing after or held;
- fail_to_absent / fail_to_skipped: failing before, gone (deleted, deselected) or skipped.

Target tests, the tests the verdict is about, in this order of preference:
1. `reproduction`: the trace's reproduction (targets.py), where the runs confirm those
   tests fail before;
2. `base_failures`: every test failing on the base run;
3. `fix_tests`: tests the fix added that fail on the base code (the only evidence left,
   and written by the candidate: the test_files_changed flag says so).
A target passes when it passes after and (for a test the base has) held.

Verdict `resolved` needs, all of:
- every target passing (resolution `full`), except for `base_failures`, where at least one
  must pass (`partial` is enough: without a reproduction, QA cannot tell a pre-existing
  failure unrelated to the bug from the bug, and every fix of such a repository would
  otherwise be `unresolved`; the targets still failing are listed);
- no pass_to_fail;
- no blocking flag.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prtrace.qa.report import (
    Outcome,
    QAFlag,
    Resolution,
    TargetSource,
    TestChange,
    TestOutcome,
    Verdict,
)
from prtrace.qa.targets import match_reproduction

_FAILING: frozenset[Outcome] = frozenset({"failed", "error"})
_BROKEN_AFTER: frozenset[Outcome] = frozenset({"failed", "error", "absent"})


@dataclass(frozen=True)
class RunOutcomes:
    """Per-test outcomes of QA's runs (None: that run did not happen)."""

    base: Mapping[str, Outcome]
    final: Mapping[str, Outcome]
    held: Mapping[str, Outcome] | None = None
    base_with_final_tests: Mapping[str, Outcome] | None = None


@dataclass(frozen=True)
class Classification:
    verdict: Verdict
    tests: list[TestOutcome]
    verdict_reason: str
    target_source: TargetSource = "none"
    target_tests: list[str] = field(default_factory=list)
    unresolved_targets: list[str] = field(default_factory=list)
    resolution: Resolution | None = None
    fail_to_pass: list[str] = field(default_factory=list)
    pass_to_pass: list[str] = field(default_factory=list)
    pass_to_fail: list[str] = field(default_factory=list)
    fail_to_fail: list[str] = field(default_factory=list)
    fail_to_absent: list[str] = field(default_factory=list)
    fail_to_skipped: list[str] = field(default_factory=list)


def attribute_collection_errors(
    before: Mapping[str, Outcome], after_ids: Iterable[str]
) -> dict[str, Outcome]:
    """A module that failed to import is one entry (its path, `error`): each test another
    run found in that module errored in this one too."""
    broken = {
        test_id for test_id, outcome in before.items() if outcome == "error" and "::" not in test_id
    }
    filled = dict(before)
    for test_id in after_ids:
        module = test_id.split("::", 1)[0]
        if test_id not in filled and module in broken:
            filled[test_id] = "error"
    return filled


def drop_modules(outcomes: Mapping[str, Outcome], modules: frozenset[str]) -> dict[str, Outcome]:
    """A module that failed to import is not a test: it is listed in its run's summary
    (`collection_errors`), its tests are attributed above, and it leaves the comparison."""
    return {test_id: outcome for test_id, outcome in outcomes.items() if test_id not in modules}


def _held_outcome(runs: RunOutcomes, test_id: str) -> Outcome | None:
    """The base definition on the final code; None for a test the base does not have."""
    if test_id not in runs.base:
        return None
    if runs.held is None:
        return runs.final.get(test_id, "absent")
    return runs.held.get(test_id, "absent")


def _targets(
    runs: RunOutcomes, before: Mapping[str, Outcome], flaky: frozenset[str], repro: list[str]
) -> tuple[TargetSource, list[str]]:
    failing_before = [t for t, outcome in before.items() if outcome in _FAILING]
    if repro and (matched := match_reproduction(repro, failing_before)):
        return "reproduction", matched
    base_failures = sorted(t for t, o in runs.base.items() if o in _FAILING and t not in flaky)
    if base_failures:
        return "base_failures", base_failures
    added = sorted(t for t in failing_before if t not in runs.base and t not in flaky)
    if added:
        return "fix_tests", added
    return "none", []


def classify(
    runs: RunOutcomes,
    flaky: frozenset[str] = frozenset(),
    reproduction: Iterable[str] = (),
    flags: Iterable[QAFlag] = (),
    changes: Mapping[str, TestChange] | None = None,
) -> Classification:
    changes = changes or {}
    overlay = runs.base_with_final_tests or {}
    ids = sorted(runs.base.keys() | runs.final.keys() | overlay.keys() | (runs.held or {}).keys())
    before: dict[str, Outcome] = {
        test_id: runs.base.get(test_id) or overlay.get(test_id, "absent") for test_id in ids
    }
    source, targets = _targets(runs, before, flaky, list(reproduction))
    target_set = frozenset(targets)
    lists: dict[str, list[str]] = {k: [] for k in ("f2p", "p2p", "p2f", "f2f", "f2a", "f2s")}
    tests: list[TestOutcome] = []
    passing_targets: list[str] = []
    for test_id in ids:
        old, new = before[test_id], runs.final.get(test_id, "absent")
        held = _held_outcome(runs, test_id)
        is_flaky = test_id in flaky
        tests.append(
            TestOutcome(
                test_id=test_id,
                before=old,
                after=new,
                flaky=is_flaky,
                base=runs.base.get(test_id),
                base_with_final_tests=overlay.get(test_id) if overlay else None,
                held=runs.held.get(test_id, "absent")
                if runs.held is not None and test_id in runs.base
                else None,
                target=test_id in target_set,
                changed_by_fix=changes.get(test_id),
            )
        )
        if is_flaky:
            continue
        held_passes = held is None or held == "passed"
        if test_id in target_set and new == "passed" and held_passes:
            passing_targets.append(test_id)
        if old in _FAILING:
            if new == "passed" and held_passes:
                lists["f2p"].append(test_id)
            elif new == "absent":
                lists["f2a"].append(test_id)
            elif "skipped" in (new, held):
                lists["f2s"].append(test_id)
            else:
                lists["f2f"].append(test_id)
        elif old == "passed":
            if new in _BROKEN_AFTER or held in _BROKEN_AFTER:
                lists["p2f"].append(test_id)
            elif new == "passed" and held_passes:
                lists["p2p"].append(test_id)
    unresolved = [t for t in targets if t not in passing_targets]
    resolution: Resolution | None = None
    if targets:
        resolution = "none" if not passing_targets else "partial" if unresolved else "full"
    verdict, reason = _decide(source, targets, resolution, lists["p2f"], list(flags))
    return Classification(
        verdict=verdict,
        tests=tests,
        verdict_reason=reason,
        target_source=source,
        target_tests=targets,
        unresolved_targets=unresolved,
        resolution=resolution,
        fail_to_pass=lists["f2p"],
        pass_to_pass=lists["p2p"],
        pass_to_fail=lists["p2f"],
        fail_to_fail=lists["f2f"],
        fail_to_absent=lists["f2a"],
        fail_to_skipped=lists["f2s"],
    )


def _decide(
    source: TargetSource,
    targets: list[str],
    resolution: Resolution | None,
    pass_to_fail: list[str],
    flags: list[QAFlag],
) -> tuple[Verdict, str]:
    if not targets:
        return "unresolved", "no test fails on the base code: nothing shows a bug the fix fixed"
    if resolution == "none":
        return "unresolved", f"none of the {len(targets)} target tests passes on the final code"
    if resolution == "partial" and source != "base_failures":
        return "unresolved", "some target tests still do not pass on the final code"
    if pass_to_fail:
        return "unresolved", f"{len(pass_to_fail)} tests that passed on the base code broke"
    blocking = sorted({flag.code for flag in flags if flag.blocking})
    if blocking:
        return "unresolved", "the fix's tests cannot be trusted: " + ", ".join(blocking)
    if resolution == "partial":
        return "resolved", (
            "some tests failing on the base code pass on the final code; others still fail "
            "(no reproduction tells which failure was the bug)"
        )
    return "resolved", f"every target test ({source.replace('_', ' ')}) passes on the final code"
