"""The verdict rules (prtrace.qa.verdict): target tests, the held run, the lists, the
flags that block, and a base-run result that nothing overwrites."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from prtrace.qa.report import Outcome, QAFlag
from prtrace.qa.targets import match_reproduction, reproduction
from prtrace.qa.verdict import RunOutcomes, classify
from prtrace.schema import Event

BUG = "tests/test_r.py::test_bug"
OTHER = "tests/test_r.py::test_other"
OLD = "tests/test_r.py::test_old_failure"
NEW = "tests/test_new.py::test_new"

HOOK = QAFlag(code="result_hook_added", blocking=True, detail="hook", paths=["conftest.py"])
CHANGED = QAFlag(code="test_files_changed", blocking=False, detail="tests", paths=["t.py"])


def runs(
    base: Mapping[str, Outcome],
    final: Mapping[str, Outcome],
    held: Mapping[str, Outcome] | None = None,
    overlay: Mapping[str, Outcome] | None = None,
) -> RunOutcomes:
    return RunOutcomes(base=base, final=final, held=held, base_with_final_tests=overlay)


def test_the_plain_fix_is_resolved_with_the_bugs_test_as_target() -> None:
    result = classify(runs({BUG: "failed", OTHER: "passed"}, {BUG: "passed", OTHER: "passed"}))
    assert result.verdict == "resolved"
    assert (result.target_source, result.target_tests) == ("base_failures", [BUG])
    assert result.resolution == "full"
    assert result.fail_to_pass == [BUG]
    assert result.pass_to_pass == [OTHER]


def test_no_fix_and_an_unrelated_new_test_is_unresolved() -> None:
    result = classify(
        runs(
            {BUG: "failed", OTHER: "passed"},
            {BUG: "failed", OTHER: "passed", NEW: "passed"},
            held={BUG: "failed", OTHER: "passed"},
            overlay={BUG: "failed", OTHER: "passed", NEW: "failed"},
        )
    )
    assert result.verdict == "unresolved"
    assert result.fail_to_pass == [NEW]  # evidence, reported, not a target
    assert result.unresolved_targets == [BUG]
    assert result.fail_to_fail == [BUG]
    assert result.resolution == "none"


@pytest.mark.parametrize(
    ("final_bug", "held_bug", "listed_in"),
    [
        ("absent", "failed", "fail_to_absent"),  # deleted or deselected
        ("skipped", "skipped", "fail_to_skipped"),
        ("passed", "failed", "fail_to_fail"),  # the edited copy passes, the original fails
        ("passed", "skipped", "fail_to_skipped"),
    ],
)
def test_a_target_that_vanished_skipped_or_fails_held_blocks_resolved(
    final_bug: Outcome, held_bug: Outcome, listed_in: str
) -> None:
    final = {OTHER: "passed", NEW: "passed"} | ({} if final_bug == "absent" else {BUG: final_bug})
    result = classify(
        runs(
            {BUG: "failed", OTHER: "passed"},
            final,  # type: ignore[arg-type]
            held={BUG: held_bug, OTHER: "passed"},
            overlay={OTHER: "passed", NEW: "failed"},
        )
    )
    assert result.verdict == "unresolved"
    assert result.unresolved_targets == [BUG]
    assert getattr(result, listed_in) == [BUG]
    assert BUG not in result.fail_to_pass


def test_a_base_run_result_is_never_overwritten_by_the_overlay() -> None:
    """A conftest importing what only the final has: every test errors on the base code
    with the final's tests, yet those that passed on the base stay `passed` before."""
    result = classify(
        runs(
            {BUG: "failed", OTHER: "passed"},
            {BUG: "passed", OTHER: "passed"},
            overlay={BUG: "error", OTHER: "error"},
        )
    )
    assert result.fail_to_pass == [BUG]
    assert result.pass_to_pass == [OTHER]
    other = next(t for t in result.tests if t.test_id == OTHER)
    assert (other.before, other.base, other.base_with_final_tests) == ("passed", "passed", "error")


def test_a_passing_test_broken_only_in_the_held_run_is_a_regression() -> None:
    result = classify(
        runs(
            {BUG: "failed", OTHER: "passed"},
            {BUG: "passed", OTHER: "passed"},  # the final's edited copy of OTHER passes
            held={BUG: "passed", OTHER: "failed"},
        )
    )
    assert result.verdict == "unresolved"
    assert result.pass_to_fail == [OTHER]


@pytest.mark.parametrize("broken", ["failed", "error", "absent"])
def test_any_passing_test_that_breaks_or_vanishes_makes_it_unresolved(broken: Outcome) -> None:
    final: dict[str, Outcome] = {BUG: "passed"} | ({} if broken == "absent" else {OTHER: broken})
    result = classify(runs({BUG: "failed", OTHER: "passed"}, final))
    assert result.verdict == "unresolved"
    assert result.pass_to_fail == [OTHER]


def test_a_reproduction_narrows_the_targets_and_other_failures_do_not_block() -> None:
    base: dict[str, Outcome] = {BUG: "failed", OLD: "failed", OTHER: "passed"}
    final: dict[str, Outcome] = {BUG: "passed", OLD: "failed", OTHER: "passed"}
    with_repro = classify(runs(base, final), reproduction=["test_r.py::test_bug"])
    assert (with_repro.target_source, with_repro.target_tests) == ("reproduction", [BUG])
    assert (with_repro.verdict, with_repro.resolution) == ("resolved", "full")
    assert with_repro.fail_to_fail == [OLD]
    assert with_repro.unresolved_targets == []
    # Without one, every base failure is a target; fixing some of them is enough.
    without = classify(runs(base, final))
    assert without.target_tests == [BUG, OLD]
    assert (without.verdict, without.resolution) == ("resolved", "partial")
    assert without.unresolved_targets == [OLD]


def test_a_reproduction_that_still_fails_is_unresolved_even_if_others_were_fixed() -> None:
    base: dict[str, Outcome] = {BUG: "failed", OLD: "failed"}
    result = classify(runs(base, {BUG: "failed", OLD: "passed"}), reproduction=[BUG])
    assert result.verdict == "unresolved"
    assert result.unresolved_targets == [BUG]
    assert result.fail_to_pass == [OLD]


def test_a_reproduction_naming_no_failing_test_falls_back_to_the_base_failures() -> None:
    result = classify(
        runs({BUG: "failed"}, {BUG: "passed"}), reproduction=["tests/test_r.py::nope"]
    )
    assert (result.target_source, result.target_tests) == ("base_failures", [BUG])


def test_a_reproduction_test_written_before_the_fix_is_a_target() -> None:
    """The developer wrote the test first (not in the base snapshot), saw it fail, then
    fixed: the final's tests on the base code confirm it failed."""
    result = classify(
        runs({OTHER: "passed"}, {OTHER: "passed", NEW: "passed"}, overlay={NEW: "failed"}),
        reproduction=[NEW],
    )
    assert (result.target_source, result.target_tests, result.verdict) == (
        "reproduction",
        [NEW],
        "resolved",
    )


def test_with_nothing_failing_on_base_only_the_fixs_own_failing_tests_are_evidence() -> None:
    added = classify(
        runs({OTHER: "passed"}, {OTHER: "passed", NEW: "passed"}, overlay={NEW: "failed"})
    )
    assert (added.target_source, added.verdict) == ("fix_tests", "resolved")
    nothing = classify(runs({OTHER: "passed"}, {OTHER: "passed", NEW: "passed"}))
    assert (nothing.target_source, nothing.verdict, nothing.resolution) == (
        "none",
        "unresolved",
        None,
    )


def test_a_blocking_flag_stops_resolved_and_an_informative_one_does_not() -> None:
    fixed = runs({BUG: "failed"}, {BUG: "passed"})
    assert classify(fixed, flags=[CHANGED]).verdict == "resolved"
    blocked = classify(fixed, flags=[CHANGED, HOOK])
    assert blocked.verdict == "unresolved"
    assert "result_hook_added" in blocked.verdict_reason


def test_a_flaky_target_is_not_a_passing_one() -> None:
    result = classify(
        runs({BUG: "failed", OTHER: "failed"}, {BUG: "passed", OTHER: "passed"}),
        flaky=frozenset({BUG}),
        reproduction=[BUG, OTHER],
    )
    assert result.verdict == "unresolved"
    assert result.unresolved_targets == [BUG]


outcomes = st.sampled_from(["passed", "failed", "error", "skipped", "absent"])


@given(
    base=st.dictionaries(st.sampled_from([BUG, OTHER, OLD]), outcomes),
    final=st.dictionaries(st.sampled_from([BUG, OTHER, OLD, NEW]), outcomes),
    held=st.none() | st.dictionaries(st.sampled_from([BUG, OTHER, OLD]), outcomes),
)
def test_resolved_always_means_every_repro_target_passes_after_and_held(
    base: dict[str, Outcome], final: dict[str, Outcome], held: dict[str, Outcome] | None
) -> None:
    result = classify(runs(base, final, held), reproduction=[BUG])
    if result.verdict == "resolved":
        assert result.target_tests
        assert not result.pass_to_fail
        for test in result.tests:
            if test.target and result.target_source != "base_failures":
                assert test.after == "passed"
                assert test.held in (None, "passed")
        assert all(base.get(t, "absent") != "passed" for t in result.fail_to_pass)
    for test in result.tests:  # the base run's result is what `before` says, always
        if test.test_id in base:
            assert test.before == base[test.test_id]


def test_the_reproduction_is_what_failed_before_the_first_edit_of_code() -> None:
    def event(seq: int, kind: str, payload: dict[str, object]) -> object:
        return TypeAdapter(Event).validate_python(
            {
                "event_id": f"e{seq}",
                "seq": seq,
                "ts": "2026-12-07T10:00:00Z",
                "type": kind,
                "payload": payload,
            }
        )

    def run(seq: int, failing: list[str]) -> object:
        return event(
            seq,
            "test_run",
            {
                "framework": "pytest",
                "command": ["pytest"],
                "passed": 0,
                "failed": len(failing),
                "errors": 0,
                "skipped": 0,
                "failing_tests": failing,
            },
        )

    def edit(seq: int, path: str) -> object:
        return event(
            seq,
            "file_edit",
            {
                "path": path,
                "change": "modify",
                "diff": "@@ x",
                "lines_added": 1,
                "lines_removed": 1,
            },
        )

    events = [
        run(0, [BUG]),
        edit(1, "tests/test_new.py"),  # writing a test first is still reproducing
        run(2, [BUG, NEW]),
        edit(3, "ranges/merge.py"),
        run(4, [OTHER]),  # after the fix began: not the reproduction
    ]
    assert reproduction(events) == [BUG, NEW]  # type: ignore[arg-type]


def test_recorded_ids_match_by_suffix_only_when_unambiguous() -> None:
    known = ["pkg/tests/test_a.py::t", "other/tests/test_a.py::t", "tests/test_b.py::u"]
    assert match_reproduction(["test_b.py::u"], known) == ["tests/test_b.py::u"]
    assert match_reproduction(["tests/test_a.py::t"], known) == []  # two candidates
    assert match_reproduction(["tests/test_b.py::u", "nope"], known) == ["tests/test_b.py::u"]
