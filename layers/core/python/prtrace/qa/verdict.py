"""From per-test outcomes on base and final to FAIL_TO_PASS, PASS_TO_PASS, PASS_TO_FAIL and
the verdict.

Rules (SWE-bench style, on two full snapshots):
- fail_to_pass: failed or errored on base, passed on final;
- pass_to_fail: passed on base, and on final failed, errored or gone (a passing test that
  disappears counts as a regression: deleting tests must not look like a fix);
- a test flagged flaky (its outcome changed between reruns of the same snapshot) is kept in
  `tests` with `flaky: true` and left out of all the lists;
- resolved: at least one fail_to_pass and no pass_to_fail; otherwise unresolved.
"Before" is the final's tests run on the base code when the fix changed tests (see
overlay.py), so a test added with the fix counts when it fails on the base code. A test
whose module failed to import before (a collection error) counts as an error before. A
test seen only on final, with nothing run before, stays `absent` and is not fail_to_pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from prtrace.qa.report import Outcome, TestOutcome, Verdict

_NOT_PASSING_BEFORE: frozenset[Outcome] = frozenset({"failed", "error"})
_BROKEN_AFTER: frozenset[Outcome] = frozenset({"failed", "error", "absent"})


@dataclass(frozen=True)
class Classification:
    verdict: Verdict
    tests: list[TestOutcome]
    fail_to_pass: list[str] = field(default_factory=list)
    pass_to_pass: list[str] = field(default_factory=list)
    pass_to_fail: list[str] = field(default_factory=list)
    fail_to_fail: list[str] = field(default_factory=list)


def attribute_collection_errors(
    before: dict[str, Outcome], after_ids: Iterable[str]
) -> dict[str, Outcome]:
    """A module that failed to import is one entry (its path, `error`): each test the final
    run found in that module errored before too."""
    broken = {
        test_id for test_id, outcome in before.items() if outcome == "error" and "::" not in test_id
    }
    filled = dict(before)
    for test_id in after_ids:
        module = test_id.split("::", 1)[0]
        if test_id not in filled and module in broken:
            filled[test_id] = "error"
    return filled


def drop_modules(outcomes: dict[str, Outcome], modules: frozenset[str]) -> dict[str, Outcome]:
    """A module that failed to import is not a test: it is listed in its run's summary
    (`collection_errors`), its tests are attributed above, and it leaves the comparison."""
    return {test_id: outcome for test_id, outcome in outcomes.items() if test_id not in modules}


def classify(
    before: dict[str, Outcome], after: dict[str, Outcome], flaky: frozenset[str] = frozenset()
) -> Classification:
    tests: list[TestOutcome] = []
    lists: dict[str, list[str]] = {"f2p": [], "p2p": [], "p2f": [], "f2f": []}
    for test_id in sorted(before.keys() | after.keys()):
        old = before.get(test_id, "absent")
        new = after.get(test_id, "absent")
        is_flaky = test_id in flaky
        tests.append(TestOutcome(test_id=test_id, before=old, after=new, flaky=is_flaky))
        if is_flaky:
            continue
        if old in _NOT_PASSING_BEFORE and new == "passed":
            lists["f2p"].append(test_id)
        elif old == "passed" and new == "passed":
            lists["p2p"].append(test_id)
        elif old == "passed" and new in _BROKEN_AFTER:
            lists["p2f"].append(test_id)
        elif old in _NOT_PASSING_BEFORE and new in _NOT_PASSING_BEFORE:
            lists["f2f"].append(test_id)
    resolved = bool(lists["f2p"]) and not lists["p2f"]
    return Classification(
        verdict="resolved" if resolved else "unresolved",
        tests=tests,
        fail_to_pass=lists["f2p"],
        pass_to_pass=lists["p2p"],
        pass_to_fail=lists["p2f"],
        fail_to_fail=lists["f2f"],
    )
