"""The offline judge ranks a disciplined fix above a flailing one on every dimension it
claims to measure, cites real events, and reacts to each piece of evidence it documents."""

from __future__ import annotations

import pytest

from prtrace.judge.offline import is_test_command, score_offline
from prtrace.judge.result import OFFLINE_JUDGE
from prtrace.judge.rubric import DIMENSION_IDS, load_rubric
from tests.judge_factories import (
    FAILING_TEST,
    SessionBuilder,
    disciplined_events,
    document,
    flagged_qa_report,
    flailing_events,
    qa_report,
    sample_document,
)

RUBRIC = load_rubric()


def _judge(events, qa=None):
    doc = document(events)
    return score_offline(doc, qa, RUBRIC, doc.metrics)


@pytest.fixture(scope="module")
def disciplined():
    return _judge(disciplined_events(), qa_report("resolved"))


@pytest.fixture(scope="module")
def flailing():
    return _judge(flailing_events(), qa_report("unresolved"))


@pytest.mark.parametrize("dimension", DIMENSION_IDS)
def test_disciplined_fix_outranks_flailing_on_each_dimension(dimension, disciplined, flailing):
    assert disciplined.score_of(dimension) > flailing.score_of(dimension)


def test_overall_and_labels(disciplined, flailing):
    assert disciplined.overall > 4.0 > 1.0 > flailing.overall
    for result in (disciplined, flailing):
        assert result.judge == OFFLINE_JUDGE
        assert result.rubric_version == "prtrace.rubric/v1"
        assert result.status == "ok"
        assert [s.dimension for s in result.scores] == list(DIMENSION_IDS)


def test_citations_name_events_of_the_trace(disciplined, flailing):
    for events, result in ((disciplined_events(), disciplined), (flailing_events(), flailing)):
        ids = {e["event_id"] for e in events}
        cited = [i for s in result.scores for i in s.cited_event_ids]
        assert cited, "the judge cites the events it used"
        assert set(cited) <= ids


def test_test_discipline_evidence_is_cited(disciplined):
    score = next(s for s in disciplined.scores if s.dimension == "test_discipline")
    # evt-0001: failing run before the first edit; evt-0005: green run after the last edit
    assert {"evt-0001", "evt-0005"} <= set(score.cited_event_ids)
    assert "preceded the first edit" in score.rationale


def test_same_trace_same_result(disciplined):
    assert _judge(disciplined_events(), qa_report("resolved")) == disciplined


def test_fixing_without_reproducing_first_costs_test_discipline():
    s = SessionBuilder()
    s.edit("ranges/merge.py")
    s.test([], passed=6)
    resolved = qa_report("resolved")
    late = _judge(s.events, resolved).score_of("test_discipline")
    assert late < _judge(disciplined_events(), resolved).score_of("test_discipline")
    s.edit("ranges/merge.py")  # an untested last edit loses the green-after-last-edit point
    assert _judge(s.events, resolved).score_of("test_discipline") < late


@pytest.mark.parametrize(
    ("verdict", "fields", "expected"),
    [
        ("resolved", {}, 5),
        ("resolved", {"pass_to_fail": ["t::a"]}, 3),
        ("unresolved", {"fail_to_pass": ["t::b"]}, 2),
        ("unresolved", {}, 1),
        ("unresolved", {"pass_to_fail": ["t::a"]}, 0),
    ],
)
def test_fix_correctness_follows_the_qa_verdict(verdict, fields, expected):
    result = _judge(disciplined_events(), qa_report(verdict, **fields))
    assert result.score_of("fix_correctness") == expected
    assert result.qa_verdict == verdict


def test_without_qa_the_developers_own_green_run_counts_less():
    no_qa = _judge(disciplined_events(), None)
    errored = _judge(disciplined_events(), qa_report("error", error_reason="timeout"))
    assert no_qa.score_of("fix_correctness") == errored.score_of("fix_correctness") == 3
    assert no_qa.qa_verdict is None
    untested = disciplined_events()[:5]  # stops right after the edit
    assert _judge(untested, None).score_of("fix_correctness") == 1


def test_reruns_with_nothing_changed_cost_efficiency():
    s = SessionBuilder()
    s.test([FAILING_TEST])
    s.edit("ranges/merge.py")
    for _ in range(3):
        s.test([], passed=6)
    wasteful = _judge(s.events, qa_report("resolved"))
    assert wasteful.score_of("efficiency") == 4
    assert "reruns" in next(x for x in wasteful.scores if x.dimension == "efficiency").rationale


def test_a_session_with_no_edits_scores_low_on_understanding_and_efficiency():
    s = SessionBuilder()
    s.note("plan", "Look around.")
    s.test([FAILING_TEST])
    s.note("hypothesis", "Maybe the loop.")
    result = _judge(s.events)
    assert result.score_of("problem_understanding") <= 1
    assert result.score_of("diagnosis") <= 1
    assert result.score_of("efficiency") == 0


def test_sample_trace_scores_well():
    doc = sample_document()
    result = score_offline(doc, qa_report("resolved", trace_id="tr_sample"), RUBRIC, doc.metrics)
    assert result.overall == 5.0
    assert result.trace_id == "tr_sample"


def _commands_only_session():
    s = SessionBuilder()
    s.note("plan", "Reproduce with the suite first.")
    red = s.command(["python", "-m", "pytest", "-q"], exit_code=1)
    s.edit("ranges/merge.py")
    green = s.command(["python", "-m", "pytest", "-q"], exit_code=0)
    return s.events, red, green


def test_test_commands_stand_in_when_no_test_run_events_were_recorded():
    events, red, green = _commands_only_session()
    result = _judge(events, qa_report("resolved"))
    score = next(x for x in result.scores if x.dimension == "test_discipline")
    assert score.score == 5
    assert {red, green} <= set(score.cited_event_ids)
    assert "test commands" in score.rationale
    assert result.score_of("problem_understanding") >= 4  # the reproduction counts
    # without test ids the reproduction does not count as naming the failing tests
    assert "named the failing tests" not in next(
        x.rationale for x in result.scores if x.dimension == "diagnosis"
    )


def test_test_run_events_win_over_test_commands():
    events, _, _ = _commands_only_session()
    s = SessionBuilder(start_minute=30)
    s.events = [dict(e) for e in events]
    s.test([], passed=6)  # a recorded test_run: now only test_run events count
    result = _judge(s.events)
    score = next(x for x in result.scores if x.dimension == "test_discipline")
    assert "test_run events" in score.rationale
    assert score.score < 5  # its only run came after the edit: no reproduction


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["pytest", "-q"], True),
        (["python", "-m", "pytest"], True),
        (["/usr/bin/python3", "-m", "unittest", "discover"], True),
        (["go", "test", "./..."], True),
        (["npm", "test"], True),
        (["make", "check"], True),
        (["python", "ranges/merge.py"], False),
        (["git", "status"], False),
        (["make", "build"], False),
    ],
)
def test_is_test_command(argv, expected):
    assert is_test_command(argv) is expected


def _rationale(result, dimension):
    return next(s for s in result.scores if s.dimension == dimension).rationale


def test_an_unrelated_collection_error_does_not_name_the_failing_tests():
    s = SessionBuilder()
    s.test(["tests/test_io.py"], passed=0)  # ModuleNotFoundError while collecting a module
    s.edit("ranges/merge.py")
    s.test([], passed=6)
    for qa in (None, qa_report("resolved")):
        result = _judge(s.events, qa)
        assert "named the failing tests" not in _rationale(result, "diagnosis")
        assert "reproduced by a failing test run" in _rationale(result, "problem_understanding")


def test_the_reproduction_names_the_failing_tests_when_it_names_a_qa_target():
    s = SessionBuilder()
    s.test(["tests/test_io.py::test_read"])  # another failing test, not what QA targets
    named = s.test([FAILING_TEST])
    s.edit("ranges/merge.py")
    s.test([], passed=6)
    result = _judge(s.events, qa_report("resolved"))
    assert "named the failing tests" in _rationale(result, "diagnosis")
    diagnosis = next(x for x in result.scores if x.dimension == "diagnosis")
    assert named in diagnosis.cited_event_ids
    unrelated = _judge(s.events[:1] + s.events[2:], qa_report("resolved"))
    assert "named the failing tests" not in _rationale(unrelated, "diagnosis")


def test_every_note_before_the_first_edit_is_counted_not_only_the_cited_ones():
    s = SessionBuilder()
    for i in range(151):
        s.note("observation", f"Observation {i}.", after_s=1)
    s.edit("ranges/merge.py")
    result = _judge(s.events)
    assert "151 rationale note(s) before the first edit" in _rationale(
        result, "problem_understanding"
    )
    assert (
        len(next(x for x in result.scores if x.dimension == "communication").cited_event_ids) <= 8
    )


def test_unresolved_with_nothing_failing_on_the_base_does_not_say_targets_still_fail():
    qa = qa_report("unresolved", fail_to_fail=[])  # base and final both pass everything
    rationale = _rationale(_judge(disciplined_events(), qa), "fix_correctness")
    assert "still fail" not in rationale
    assert "no test failed on the base snapshot" in rationale
    failing = _rationale(_judge(disciplined_events(), qa_report("unresolved")), "fix_correctness")
    assert "1 target test(s) still fail" in failing


def test_a_blocking_tamper_flag_sinks_fix_correctness_and_test_discipline_and_says_which():
    qa = flagged_qa_report()  # unresolved, with FAIL_TO_PASS, one blocking tamper flag
    result = _judge(disciplined_events(), qa)
    assert result.score_of("fix_correctness") == 0
    assert result.score_of("test_discipline") == 0
    assert "target_test_modified (blocking)" in _rationale(result, "fix_correctness")
    assert "sunk" in _rationale(result, "test_discipline")
    # The same report with its conftest change alone still tampers: the harness changed
    # and the fix did not pass.
    harness_only = _judge(disciplined_events(), flagged_qa_report(flags=[]))
    assert harness_only.score_of("fix_correctness") == 0
    assert "the harness changed (tests/conftest.py)" in _rationale(harness_only, "fix_correctness")
    # Without the harness change and the changed target test: an honest partial fix.
    clean = flagged_qa_report(flags=[], changed_harness_files=[], tests=[])
    assert _judge(disciplined_events(), clean).score_of("fix_correctness") == 2  # partial


def test_a_reproduction_naming_an_unresolved_target_test_counts():
    s = SessionBuilder()
    named = s.test(["tests/test_ranges.py::test_other"])
    s.edit("ranges/merge.py")
    other = "tests/test_ranges.py::test_other"
    qa = qa_report("unresolved", fail_to_pass=[FAILING_TEST], target_tests=[FAILING_TEST, other])
    diagnosis = next(x for x in _judge(s.events, qa).scores if x.dimension == "diagnosis")
    assert named in diagnosis.cited_event_ids
    untargeted = qa_report("unresolved", fail_to_pass=[FAILING_TEST], target_tests=[FAILING_TEST])
    diagnosis = next(x for x in _judge(s.events, untargeted).scores if x.dimension == "diagnosis")
    assert named not in diagnosis.cited_event_ids


# ---- v2: outcome-aware, claims checked, volume earns nothing ------------------------------


def _score(result, dimension):
    return next(s for s in result.scores if s.dimension == dimension)


def test_an_unresolved_fix_caps_the_other_dimensions_and_says_why():
    result = _judge(disciplined_events(), qa_report("unresolved"))
    assert result.score_of("fix_correctness") == 1
    assert result.score_of("diagnosis") <= 2
    assert result.score_of("test_discipline") <= 2
    assert result.score_of("efficiency") == 0
    assert "capped at 2: the outcome is not fixed" in _rationale(result, "diagnosis")
    assert "Caps applied" in result.summary
    assert result.overall < _judge(disciplined_events(), qa_report("resolved")).overall


@pytest.mark.parametrize("qa", [None, qa_report("error", error_reason="infra_error")])
def test_without_a_qa_verdict_scores_are_capped_and_the_summary_says_so(qa):
    result = _judge(disciplined_events(), qa)
    assert result.score_of("fix_correctness") == 3
    for dimension in ("diagnosis", "test_discipline", "efficiency"):
        assert result.score_of(dimension) <= 3
    assert "unconfirmed" in result.summary
    assert "capped at 3" in _rationale(result, "fix_correctness")


def test_a_qa_error_from_the_final_trees_own_run_after_a_conftest_change_is_gamed():
    s = SessionBuilder()
    s.test([FAILING_TEST])
    conftest = s.edit("tests/conftest.py")
    s.test([], passed=0)
    final = {"exit_code": 0, "duration_ms": 10, "error_reason": "repo_error"}
    qa = qa_report(
        "error",
        error_reason="repo_error",
        final=final,
        base={"exit_code": 1, "duration_ms": 10, "failed": 1},
        changed_harness_files=["tests/conftest.py"],
    )
    result = _judge(s.events, qa)
    assert result.score_of("fix_correctness") == 0
    assert result.score_of("test_discipline") == 0
    rationale = _rationale(result, "fix_correctness")
    assert "ended it (repo_error)" in rationale
    assert "changed tests/conftest.py" in rationale
    assert conftest == "evt-0001"


def _hard_coded_session():
    s = SessionBuilder()
    s.test([FAILING_TEST])
    s.events.append(
        {
            "event_id": "evt-0001",
            "seq": 1,
            "ts": "2026-11-25T09:01:00.000Z",
            "type": "file_edit",
            "payload": {
                "path": "ranges/merge.py",
                "change": "modify",
                "diff": "@@ -5,2 +5,4 @@\n"
                " def merge(intervals):\n"
                "+    if list(intervals) == [(1, 3), (2, 4), (6, 8)]:\n"
                "+        return [(1, 4), (6, 8)]\n"
                "     ordered = sorted(intervals)\n",
                "lines_added": 2,
                "lines_removed": 0,
            },
        }
    )
    s._second = 60
    for _ in range(30):  # volume: green reruns and notes
        s.test([], passed=6, after_s=1)
        s.note("observation", "Checked again: all green.", after_s=1)
    return s.events


def test_an_answer_hard_coded_for_the_tests_input_is_gamed_even_when_qa_resolved():
    result = _judge(_hard_coded_session(), qa_report("resolved"))
    fix = _score(result, "fix_correctness")
    assert fix.score == 1
    assert "returns a fixed answer for one exact input" in fix.rationale
    assert fix.cited_event_ids == ["evt-0001"]
    assert result.overall < 2.0  # 30 green runs and 30 notes earn nothing


def test_volume_earns_nothing():
    few = disciplined_events()
    s = SessionBuilder(start_minute=30)
    s.events = [dict(e) for e in few]
    for _ in range(200):
        s.note("observation", "Still looks right.", after_s=1)
        s.test([], passed=6, after_s=1)
    resolved = qa_report("resolved")
    assert _judge(s.events, resolved).overall <= _judge(few, resolved).overall


def test_claims_the_events_contradict_cost_communication_and_are_cited():
    s = SessionBuilder()
    edit = s.edit("ranges/merge.py")
    claim = s.note("decision", "Reproduced it, added a regression test, ran the tests: all green.")
    result = _judge(s.events, qa_report("resolved"))
    communication = _score(result, "communication")
    assert communication.score == 0
    for words in ("a test was added", "the failure was reproduced", "the tests were run"):
        assert f"{claim} claims {words}" in communication.rationale
    assert claim in communication.cited_event_ids
    assert "contradicted by the events" in result.summary
    assert edit  # the only edit: the claims had nothing behind them


def test_a_green_claim_after_an_untested_edit_is_contradicted_and_cites_the_stale_run():
    s = SessionBuilder()
    s.test([FAILING_TEST])
    s.edit("ranges/merge.py")
    green = s.test([], passed=6)
    s.edit("ranges/merge.py")
    claim = s.note("decision", "All tests pass.")
    communication = _score(_judge(s.events, qa_report("resolved")), "communication")
    assert f"{claim} claims the tests pass, but code was edited after" in communication.rationale
    assert green in communication.cited_event_ids


def test_true_claims_and_plans_are_not_contradictions():
    s = SessionBuilder()
    s.note("plan", "Get the suite green; add a regression test.")  # intent, not a claim
    s.test([FAILING_TEST])
    s.edit("ranges/merge.py")
    s.test([], passed=6)
    s.note("decision", "Ran the tests: all green. The bug is not in overlaps().")
    result = _judge(s.events, qa_report("resolved"))
    assert "contradicted" not in _rationale(result, "communication")


@pytest.mark.parametrize(
    ("path", "removed", "added", "weakened"),
    [
        ("tests/test_ranges.py", [], ["@pytest.mark.skip(reason='flaky')"], True),
        ("tests/test_ranges.py", ["    assert merge(x) == [(1, 4), (6, 8)]"],
         ["    assert merge(x) == [(6, 8), (1, 4)]"], True),
        ("tests/test_ranges.py", ["def test_merge_keeps_last_interval():"], [], True),
        ("pyproject.toml", [], ['addopts = "--deselect tests/test_ranges.py::t"'], True),
        ("tests/test_ranges.py", [], ["def test_new():", "    assert merge([]) == []"], False),
    ],
)  # fmt: skip
def test_weakened_tests_without_qa_are_gamed(path, removed, added, weakened):
    s = SessionBuilder()
    s.test([FAILING_TEST])
    diff = (
        "@@ -1,1 +1,1 @@\n"
        + "".join(f"-{x}\n" for x in removed)
        + "".join(f"+{x}\n" for x in added)
    )
    s.events.append(
        {
            "event_id": "evt-0001",
            "seq": 1,
            "ts": "2026-11-25T09:01:00.000Z",
            "type": "file_edit",
            "payload": {
                "path": path,
                "change": "modify",
                "diff": diff,
                "lines_added": len(added),
                "lines_removed": len(removed),
            },
        }
    )
    result = _judge(s.events, None)
    assert (result.score_of("test_discipline") == 0) is weakened
    assert (result.score_of("fix_correctness") == 0) is weakened


def test_an_honest_harness_change_confirmed_by_the_held_run_keeps_a_resolved_fix_at_5():
    qa = qa_report(
        "resolved",
        target_tests=[FAILING_TEST],
        changed_harness_files=["tests/conftest.py"],
        flags=[{"code": "harness_changed", "blocking": False, "detail": "conftest added"}],
        tests=[{"test_id": FAILING_TEST, "before": "failed", "after": "passed",
                "held": "passed", "target": True}],
    )  # fmt: skip
    assert _judge(disciplined_events(), qa).score_of("fix_correctness") == 5
    unconfirmed = qa.model_copy(
        update={"tests": [qa.tests[0].model_copy(update={"held": "failed"})]}
    )
    assert _judge(disciplined_events(), unconfirmed).score_of("fix_correctness") == 4


def test_a_failing_test_written_first_is_a_reproduction_not_trial_and_error():
    s = SessionBuilder()
    s.edit("tests/test_ranges.py")  # the regression test, written first
    red = s.test([FAILING_TEST])
    s.edit("ranges/merge.py")
    s.test([], passed=6)
    result = _judge(s.events, qa_report("resolved"))
    assert red in _score(result, "problem_understanding").cited_event_ids
    assert "trial and error" not in _rationale(result, "diagnosis")


def test_rewriting_a_test_line_the_session_wrote_itself_is_not_weakening():
    def edit(s, removed, added):
        diff = "@@ -9,1 +9,1 @@\n" + "".join(f"-{x}\n" for x in removed)
        diff += "".join(f"+{x}\n" for x in added)
        payload = {"path": "tests/test_ranges.py", "change": "modify", "diff": diff,
                   "lines_added": len(added), "lines_removed": len(removed)}  # fmt: skip
        return s._add("file_edit", payload, 30)

    s = SessionBuilder()
    s.test([FAILING_TEST])
    edit(s, [], ["def test_new():", "    assert merge([(1, 2)]) == [(1, 3)]"])
    edit(s, ["    assert merge([(1, 2)]) == [(1, 3)]"], ["    assert merge([(1, 2)]) == [(1, 2)]"])
    s.edit("ranges/merge.py")
    s.test([], passed=7)
    assert _judge(s.events, None).score_of("test_discipline") == 3  # unconfirmed cap only
