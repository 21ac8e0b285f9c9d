"""An answer that contradicts hard QA evidence is never stored as the model said it: a
fix_correctness above the bound an unresolved, errored or blocking-flagged QA report sets
is lowered to the bound, and the result says so (scripted OpenAI-compatible server)."""

from __future__ import annotations

import pytest

from prtrace.adapters.openai_chat import build_llm_judge
from prtrace.judge.rubric import DIMENSION_IDS, load_rubric
from prtrace.judge.service import judge_trace
from prtrace.judge.settings import JudgeSettings
from tests.fake_openai import answer, completion, fake_openai_server
from tests.judge_factories import flagged_qa_report, qa_report, sample_document

RUBRIC = load_rubric()
DOC = sample_document()


@pytest.fixture
def fake():
    with fake_openai_server() as server:
        yield server


def _judge(url: str, qa):
    settings = JudgeSettings.model_validate(
        {"openai_api_key": "sk-test-not-real", "openai_base_url": url, "model": "m",
         "timeout_s": 5, "max_retries": 0}
    )  # fmt: skip
    judge = build_llm_judge(settings, RUBRIC)
    assert judge is not None
    return judge_trace(DOC, qa, RUBRIC, judge)


@pytest.mark.parametrize(
    ("qa", "bound", "why"),
    [
        (qa_report("unresolved", trace_id="tr_sample"), 2, "the QA verdict is unresolved"),
        (qa_report("error", trace_id="tr_sample", error_reason="repo_error"), 3,
         "QA could not confirm the fix"),
        (flagged_qa_report("tr_sample"), 1, "QA raised a blocking flag (target_test_modified)"),
    ],
)  # fmt: skip
def test_fix_correctness_above_the_evidence_is_lowered_and_recorded(fake, qa, bound, why):
    fake.push(completion(answer({"fix_correctness": 5, "diagnosis": 5}, cite=["evt-0005"])))
    result = _judge(fake.url, qa)
    assert len(fake.requests) == 1  # lowered, not sent back
    assert result.status == "ok"
    assert result.score_of("fix_correctness") == bound
    assert result.score_of("diagnosis") == 5  # only the bounded dimension changes
    expected = {d: 4 for d in DIMENSION_IDS} | {"fix_correctness": bound, "diagnosis": 5}
    assert result.overall == RUBRIC.weighted_overall(expected)
    [problem] = result.problems
    assert problem.startswith("attempt 1: fix_correctness: the model's score contradicts")
    assert f"lowered from 5 to {bound}: {why}" in problem
    kept = next(s for s in result.scores if s.dimension == "fix_correctness")
    assert kept.rationale.startswith(f"[lowered from 5 to {bound}: {why}")
    # The model was told the bound in its prompt.
    user = fake.requests[0]["messages"][1]["content"]
    assert f"bound: fix_correctness at most {bound} (" in user


def test_a_score_within_the_bound_is_kept_as_is(fake):
    fake.push(completion(answer({"fix_correctness": 1}, cite=["evt-0005"])))
    result = _judge(fake.url, qa_report("unresolved", trace_id="tr_sample"))
    assert result.score_of("fix_correctness") == 1
    assert result.problems == []


def test_a_resolved_clean_report_sets_no_bound(fake):
    fake.push(completion(answer({"fix_correctness": 5}, cite=["evt-0005"])))
    result = _judge(fake.url, qa_report("resolved", trace_id="tr_sample"))
    assert result.score_of("fix_correctness") == 5
    assert result.problems == []
