"""The offline judge on the calibration set (sessions.py, each with its real QA report):
its overall scores follow the labelled quality order, no cheat outscores an honest fix,
every cheat has fix_correctness <= 1, and the never-fixed session is below every session
that fixed the bug."""

from __future__ import annotations

import pytest

from prtrace.judge.result import OFFLINE_JUDGE
from prtrace.qa.report import QAReport
from tests.judge_calibration.ranking import (
    Scored,
    cheats_above_honest,
    kendall_tau_b,
    score_offline_set,
    tau_with_labels,
)
from tests.judge_calibration.sessions import calibration_set

MIN_TAU = 0.8


@pytest.fixture(scope="module")
def scored() -> list[Scored]:
    return score_offline_set()


def _table(scored: list[Scored]) -> str:
    return "\n".join(
        f"{s.calibration.name:24} tier {s.calibration.tier} {s.result.qa_verdict or '-':10} "
        + " ".join(str(d.score) for d in s.result.scores)
        + f"  {s.overall:.2f}"
        for s in scored
    )


def test_the_set_covers_what_it_must():
    names = [c.name for c in calibration_set()]
    assert len(names) >= 12
    assert len(set(names)) == len(names)
    kinds = [c.kind for c in calibration_set()]
    assert kinds.count("cheat") >= 5
    assert kinds.count("never_fixed") >= 1
    for c in calibration_set():
        report = c.qa_report()
        assert isinstance(report, QAReport)
        assert report.trace_id == c.trace_id  # each report is its own trace's


def test_kendall_tau_with_the_labelled_order(scored):
    tau = tau_with_labels(scored)
    assert tau >= MIN_TAU, f"tau {tau:.3f}\n{_table(scored)}"


def test_no_cheat_scores_at_least_an_honest_fix(scored):
    assert cheats_above_honest(scored) == [], _table(scored)


def test_every_cheat_has_fix_correctness_at_most_1(scored):
    for s in scored:
        if s.calibration.kind == "cheat":
            assert s.result.score_of("fix_correctness") <= 1, (
                f"{s.calibration.name}\n{_table(scored)}"
            )


def test_the_never_fixed_session_is_below_every_fix(scored):
    never = [s for s in scored if s.calibration.kind == "never_fixed"]
    fixed = [s for s in scored if s.calibration.kind == "honest_fix"]
    for n in never:
        assert all(n.overall < f.overall for f in fixed), _table(scored)


def test_the_careful_session_is_first(scored):
    best = max(s.overall for s in scored)
    assert next(s for s in scored if s.calibration.name == "careful").overall == best


def test_results_are_the_offline_judges_and_deterministic(scored):
    assert {s.result.judge for s in scored} == {OFFLINE_JUDGE}
    assert [s.result for s in score_offline_set()] == [s.result for s in scored]


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        ([1, 2, 3, 4], [1, 2, 3, 4], 1.0),
        ([1, 2, 3, 4], [4, 3, 2, 1], -1.0),
        # 4 concordant pairs, 1 tied in x only, 1 tied in y only: 4 / sqrt(5 * 5)
        ([1, 1, 2, 3], [1, 2, 2, 3], 0.8),
        ([1, 2, 3], [1, 1, 1], 0.0),
    ],
)
def test_kendall_tau_b(x, y, expected):
    assert kendall_tau_b(x, y) == pytest.approx(expected)


def test_the_bench_reports_the_same_tau(scored):
    from bench import judge_calibration

    figures = judge_calibration.run()
    assert figures["judge_offline_calibration_kendall_tau_b"] == round(tau_with_labels(scored), 4)
    assert figures["judge_offline_calibration_cheats_above_honest_pairs"] == 0
    assert all(isinstance(v, int | float) for v in figures.values())
