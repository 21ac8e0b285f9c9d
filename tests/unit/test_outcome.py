"""The Record step's domain: the bounded outcome, the event shapes it accepts, and how a
trace ends (in-memory stores; the DynamoDB adapter is covered in test_record_outcome_store)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from prtrace.adapters.memory import MemoryTraceStore
from prtrace.judge.result import DimensionScore
from prtrace.judge.rubric import DIMENSION_IDS
from prtrace.pipeline.outcome import (
    MAX_CAUSE_CHARS,
    MAX_FLAG_BYTES,
    MAX_FLAGS,
    MAX_OUTCOME_BYTES,
    MAX_RATIONALE_CHARS,
    MAX_TEST_ID_BYTES,
    MAX_TEST_IDS,
    bounded_metrics,
    bounded_test_lists,
    complete_outcome,
    failed_outcome,
    qa_summary,
    qa_timed_out,
)
from prtrace.pipeline.record import (
    InvalidRecordEvent,
    OutcomeConflict,
    RecordInputMissing,
    RecordStep,
    parse_record_event,
)
from prtrace.records import FINALIZING, TraceRecord
from prtrace.storage_keys import judge_result_key, qa_report_key
from tests.judge_factories import FAILING_TEST, HOSTILE_TEST, flagged_qa_report, qa_report
from tests.pipeline_factories import (
    CHAIN_HEAD,
    TRACE_ID,
    assembled,
    complete_event,
    failed_event,
    judge_result,
    rejected_event,
    stored_results,
)

NOW = "2026-11-26T04:00:00.000Z"


# ---- bounds ---------------------------------------------------------------------------


def test_short_test_lists_are_kept_whole_with_counts():
    lists = bounded_test_lists(qa_report("resolved"))
    assert lists["fail_to_pass"] == {
        "count": 1,
        "ids": ["tests/test_ranges.py::test_merge_keeps_last_interval"],
        "truncated": False,
    }
    assert lists["pass_to_pass"]["count"] == 5
    assert lists["pass_to_fail"] == {"count": 0, "ids": [], "truncated": False}


def test_long_test_lists_are_capped_per_list_and_say_so():
    many = [f"tests/test_big.py::test_{i}" for i in range(1000)]
    lists = bounded_test_lists(qa_report("resolved", fail_to_pass=many, pass_to_pass=many))
    for name in ("fail_to_pass", "pass_to_pass"):
        assert lists[name]["count"] == 1000
        assert lists[name]["ids"] == many[:MAX_TEST_IDS]
        assert lists[name]["truncated"] is True


def test_the_id_budget_goes_to_the_most_telling_lists_first():
    long_ids = [f"tests/test_x.py::test_{i}[{'p' * 200}]" for i in range(MAX_TEST_IDS)]
    report = qa_report("unresolved", fail_to_pass=[], pass_to_fail=long_ids, pass_to_pass=long_ids)
    lists = bounded_test_lists(report)
    kept = sum(len(i.encode()) for name in lists for i in lists[name]["ids"])
    assert kept <= MAX_TEST_ID_BYTES
    assert len(lists["pass_to_fail"]["ids"]) == MAX_TEST_IDS  # spent first
    assert 0 < len(lists["pass_to_pass"]["ids"]) < MAX_TEST_IDS
    assert lists["pass_to_pass"]["truncated"] is True


def test_worst_case_outcome_stays_far_below_the_item_limit():
    huge = "ü" * 5000  # multi-byte characters: DynamoDB counts bytes
    ids = [f"tests/t.py::test_{i}_{huge}" for i in range(5000)]
    report = qa_report(
        "error", error_reason="infra_error", error_detail=huge, fail_to_pass=ids,
        pass_to_pass=ids, pass_to_fail=ids, fail_to_fail=ids, fail_to_absent=ids,
        fail_to_skipped=ids, target_tests=ids, unresolved_targets=ids, verdict_reason=huge,
        flags=[{"code": "harness_changed", "blocking": True, "detail": huge, "paths": ids}] * 50,
    )  # fmt: skip
    scores = [
        DimensionScore(dimension=d, score=1, rationale=huge, cited_event_ids=[huge] * 500)  # type: ignore[arg-type]
        for d in DIMENSION_IDS
    ]
    judge = judge_result(scores=scores, summary=huge, problems=[huge] * 100)
    summary = assembled()["summary"] | {"metrics": {f"m{i}": huge for i in range(500)}}
    outcome = complete_outcome(summary, report, None, judge, NOW)
    size = len(orjson.dumps(outcome))
    assert size <= MAX_OUTCOME_BYTES < 200 * 1024  # the item limit is 400 KB
    for score in outcome["judge"]["scores"]:
        assert len(score["rationale"]) == MAX_RATIONALE_CHARS
        assert score["rationale"].endswith("…")
    assert outcome["qa"]["fail_to_pass"]["count"] == 5000


def test_the_qa_view_carries_the_verdicts_evidence():
    view = qa_summary(flagged_qa_report())
    assert view["target_tests"] == {
        "count": 2, "ids": [FAILING_TEST, HOSTILE_TEST], "truncated": False
    }  # fmt: skip
    assert view["unresolved_targets"]["ids"] == [HOSTILE_TEST]
    assert view["fail_to_absent"]["ids"] == ["tests/test_ranges.py::test_gone"]
    assert view["fail_to_skipped"]["ids"] == ["tests/test_ranges.py::test_skipped"]
    assert (view["target_source"], view["resolution"]) == ("reproduction", "partial")
    assert view["verdict_reason"].startswith("1 of 2 target tests did not pass")
    # Blocking flags first; the report's order otherwise.
    assert [(f["code"], f["blocking"]) for f in view["flags"]] == [
        ("target_test_modified", True), ("test_files_changed", False)
    ]  # fmt: skip
    assert view["flags"][0]["paths"][0] == HOSTILE_TEST
    assert view["flags"][0]["path_count"] == 2
    assert view["flag_count"] == 2
    assert set(view["runs"]) == {"base", "final", "held"}
    assert view["runs"]["held"]["log_sha256"] == "c" * 64
    assert view["runs"]["base"] == {
        "exit_code": 1, "passed": 4, "failed": 1, "errors": 0, "skipped": 0,
        "timed_out": False, "error_reason": None, "log_sha256": "a" * 64,
    }  # fmt: skip


def test_a_report_without_the_new_evidence_has_empty_lists_and_no_flags():
    view = qa_summary(qa_report("resolved"))
    assert view["target_tests"] == {"count": 0, "ids": [], "truncated": False}
    assert (view["target_source"], view["resolution"], view["verdict_reason"]) == (
        "none", None, None
    )  # fmt: skip
    assert (view["flags"], view["flag_count"], view["runs"]) == ([], 0, {})
    assert set(qa_timed_out()) == set(view)  # a QA timeout has the same shape


def test_the_api_models_describe_the_qa_view_old_and_new():
    from functions.api.models import QAView

    for view in (qa_summary(flagged_qa_report()), qa_summary(qa_report("resolved")),
                 qa_timed_out()):  # fmt: skip
        assert QAView.model_validate(view).model_dump(mode="json") == view
    # Recorded before the QA report had the verdict's evidence: still a valid answer.
    old = {k: v for k, v in qa_summary(qa_report("resolved")).items()
           if k in ("verdict", "error_reason", "error_detail", "backend", "duration_ms",
                    "fail_to_pass", "pass_to_pass", "pass_to_fail", "fail_to_fail")}  # fmt: skip
    assert QAView.model_validate(old).flags == []


def test_many_large_flags_stay_within_their_budget():
    huge = "ü" * 5000
    flags = [
        {"code": "harness_changed", "blocking": i % 2 == 0, "detail": huge, "paths": [huge] * 50}
        for i in range(100)
    ]
    view = qa_summary(flagged_qa_report(flags=flags))
    assert len(orjson.dumps(view["flags"])) <= MAX_FLAG_BYTES
    assert 0 < len(view["flags"]) <= MAX_FLAGS
    assert all(flag["blocking"] for flag in view["flags"])  # blocking ones kept first
    assert view["flag_count"] == 100
    first = view["flags"][0]
    assert first["path_count"] == 50
    assert first["detail"].endswith("…")
    assert len(first["detail"].encode()) <= 400


def test_metrics_keep_scalars_and_small_maps():
    metrics = {
        "duration_ms": 5,
        "by_type": {"a": 1},
        "deep": {"x": {"y": {"z": 1}}},
        "s": "x" * 999,
    }
    bounded = bounded_metrics(metrics)
    assert bounded["duration_ms"] == 5
    assert bounded["by_type"] == {"a": 1}
    assert bounded["deep"] == {"x": None}  # maps of scalars, no deeper
    assert len(bounded["s"]) == 200


def test_failure_cause_is_truncated_and_says_so():
    outcome = failed_outcome("qa", "States.TaskFailed", "x" * (MAX_CAUSE_CHARS * 3), NOW)
    assert len(outcome["cause"]) == MAX_CAUSE_CHARS
    assert outcome["cause_truncated"] is True
    short = failed_outcome("qa", "States.TaskFailed", "it broke", NOW)
    assert (short["cause"], short["cause_truncated"]) == ("it broke", False)


# ---- events ---------------------------------------------------------------------------


def test_the_three_events_parse():
    assert parse_record_event(complete_event()).status == "complete"
    assert parse_record_event(rejected_event()).status == "rejected"
    assert parse_record_event(failed_event()).status == "failed"


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        (lambda e: e.update(status="done"), "/status"),
        (lambda e: e.pop("judge_result_key"), "/judge_result_key"),
        (lambda e: e["assembled"]["summary"].pop("chain"), "/assembled/summary/chain"),
        (lambda e: e.update(qa={"report_key": None, "skipped": None}), "/qa"),
        (lambda e: e.update(qa={"report_key": None, "skipped": "bored"}), "/qa/skipped"),
        (lambda e: e.update(trace_id="tr_nope"), "/trace_id"),
        (lambda e: e.update(judge_result_key="tenants/other/x.json"), "/"),
    ],
)
def test_a_malformed_event_names_what_is_wrong(change, pointer):
    event = complete_event()
    change(event)
    with pytest.raises(InvalidRecordEvent) as caught:
        parse_record_event(event)
    message = str(caught.value)
    assert message.startswith("Record step event is invalid: ")
    assert f" {pointer}:" in message or message.startswith(
        f"Record step event is invalid: {pointer}"
    )


def test_a_key_of_another_trace_is_refused():
    event = complete_event()
    event["judge_result_key"] = judge_result_key("globex", TRACE_ID)
    with pytest.raises(InvalidRecordEvent, match=r"judge_result_key .* is not under tenants/acme/"):
        parse_record_event(event)


def test_failed_stage_must_be_a_known_step():
    with pytest.raises(InvalidRecordEvent, match="/stage"):
        parse_record_event(failed_event() | {"stage": "deploy"})


# ---- the step -------------------------------------------------------------------------


class DictObjects:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)


def finalized(store: MemoryTraceStore, tenant: str = "acme", status: str = FINALIZING) -> None:
    store.traces[(tenant, TRACE_ID)] = TraceRecord(
        tenant=tenant,
        trace_id=TRACE_ID,
        status=status,
        metadata={},
        created_at=NOW,
        updated_at=NOW,
        chunk_count=3,
        event_count=12,
        finalize={"expected_chunks": 3},
    )


@pytest.fixture
def store() -> MemoryTraceStore:
    store = MemoryTraceStore()
    finalized(store, status="judging")
    return store


def step(store: MemoryTraceStore, objects: dict[str, bytes] | None = None) -> RecordStep:
    return RecordStep(
        store, DictObjects(stored_results() if objects is None else objects), lambda: NOW
    )


def record(store: MemoryTraceStore, event: dict[str, Any], **kwargs: Any) -> TraceRecord:
    return step(store, **kwargs).record(parse_record_event(event))


def test_complete_stores_verdict_scores_metrics_and_chain(store):
    trace = record(store, complete_event())
    assert trace.status == "complete"
    outcome = trace.outcome
    assert outcome["qa"]["verdict"] == "resolved"
    assert outcome["qa"]["fail_to_pass"]["ids"] == [
        "tests/test_ranges.py::test_merge_keeps_last_interval"
    ]
    assert outcome["qa_skipped"] is None
    judge = outcome["judge"]
    assert (judge["status"], judge["overall"], judge["rubric_version"]) == ("ok", 3.75, "v1")
    assert [s["dimension"] for s in judge["scores"]] == list(DIMENSION_IDS)
    assert all(s["rationale"] and s["score"] == 4 for s in judge["scores"])
    assert outcome["metrics"]["time_to_green_ms"] == 420_000
    assert outcome["chain"] == {"key_id": "k1", "head": CHAIN_HEAD, "length": 12}
    assert store.get_trace("acme", TRACE_ID) == trace


def test_no_snapshots_means_no_qa_and_says_why(store):
    objects = stored_results()
    del objects[qa_report_key("acme", TRACE_ID)]  # QA never ran: nothing is read
    trace = record(
        store, complete_event(skipped="no_snapshots", has_snapshots=False), objects=objects
    )
    assert (trace.outcome["qa"], trace.outcome["qa_skipped"]) == (None, "no_snapshots")
    assert trace.public()["links"]["qa_report"] is None


def test_qa_timeout_is_an_error_verdict_and_the_judge_still_counts(store):
    objects = stored_results()
    del objects[qa_report_key("acme", TRACE_ID)]
    trace = record(store, complete_event(skipped="timeout"), objects=objects)
    qa = trace.outcome["qa"]
    assert (qa["verdict"], qa["error_reason"]) == ("error", "timeout")
    assert trace.outcome["qa_skipped"] == "timeout"
    assert trace.outcome["judge"]["overall"] == 3.75


@pytest.mark.parametrize(
    ("qa", "error_reason", "detail"),
    [
        ({"skipped": "task_exited", "exit_code": 3}, "infra_error", "exited with code 3"),
        (
            {"skipped": "out_of_memory", "reason": "OutOfMemoryError: Container killed"},
            "oom",
            "(OutOfMemoryError: Container killed)",
        ),
    ],
)
def test_a_qa_task_that_ended_without_a_report_is_an_error_verdict_saying_how(
    store, qa, error_reason, detail
):
    """The state machine runs such a task once (docs/pipeline.md): the outcome says why
    there is no report, and the trace is judged without one."""
    objects = stored_results()
    del objects[qa_report_key("acme", TRACE_ID)]
    event = complete_event(skipped=qa["skipped"])
    event["qa"] |= qa
    trace = record(store, event, objects=objects)
    view = trace.outcome["qa"]
    assert (view["verdict"], view["error_reason"]) == ("error", error_reason)
    assert detail in view["error_detail"]
    assert "not run again" in view["error_detail"]
    assert trace.outcome["qa_skipped"] == qa["skipped"]
    assert trace.public()["links"]["qa_report"] is None
    assert trace.public(brief=True)["outcome"]["qa_skipped"] == qa["skipped"]
    assert set(view) == set(qa_timed_out())  # the API's QA view describes it


@pytest.mark.parametrize("missing", ["qa", "judge"])
def test_a_missing_result_raises_and_records_nothing(store, missing):
    objects = stored_results()
    key = qa_report_key if missing == "qa" else judge_result_key
    del objects[key("acme", TRACE_ID)]
    with pytest.raises(RecordInputMissing, match="is not stored"):
        record(store, complete_event(), objects=objects)
    assert store.get_trace("acme", TRACE_ID).status == "judging"


def test_a_result_of_another_trace_is_refused(store):
    objects = stored_results()
    objects[judge_result_key("acme", TRACE_ID)] = (
        judge_result("tr_other").model_dump_json().encode()
    )
    with pytest.raises(InvalidRecordEvent, match="is for trace tr_other"):
        record(store, complete_event(), objects=objects)


def test_rejected_and_failed_outcomes(store):
    rejected = record(store, rejected_event())
    assert rejected.outcome["reason"]["code"] == "chunk_mac_invalid"
    assert rejected.outcome["reason"]["chunk_seq"] == 1
    other = MemoryTraceStore()
    finalized(other, status="testing")
    failed = record(other, failed_event(cause='{"errorMessage": "boom"}'))
    assert (failed.outcome["stage"], failed.outcome["error"]) == (
        "judge",
        "Lambda.ServiceException",
    )
    assert failed.outcome["cause"] == '{"errorMessage": "boom"}'


def test_a_retry_returns_the_stored_outcome(store):
    first = record(store, complete_event())
    later = RecordStep(store, DictObjects(stored_results()), lambda: "2026-11-26T05:00:00.000Z")
    again = later.record(parse_record_event(complete_event()))
    assert again == first  # nothing rewritten, not even the time


def test_a_different_end_is_never_recorded_over_another(store):
    first = record(store, complete_event())
    with pytest.raises(OutcomeConflict, match=r"cannot record trace .* as failed: it is complete"):
        record(store, failed_event())
    assert store.get_trace("acme", TRACE_ID) == first


def test_an_open_or_unknown_trace_cannot_end():
    store = MemoryTraceStore()
    with pytest.raises(OutcomeConflict, match="does not exist"):
        record(store, failed_event())
    finalized(store, status="open")
    with pytest.raises(OutcomeConflict, match="it is open"):
        record(store, failed_event())


def _unavailable_judge_objects() -> dict[str, bytes]:
    """Stored results whose judge result is a `judge_unavailable` one (null overall)."""
    objects = stored_results()
    offline = judge_result()
    unavailable = judge_result(
        judge="openai:gpt-4.1-mini",
        status="judge_unavailable",
        overall=None,
        scores=[],
        problems=["openai:gpt-4.1-mini unavailable: HTTP 200 body is not JSON (text/html)"],
        stand_in={"judge": offline.judge, "overall": offline.overall, "scores": offline.scores},
    )
    objects[judge_result_key("acme", TRACE_ID)] = unavailable.model_dump_json().encode()
    return objects


def test_a_stand_in_is_recorded_apart_from_the_judges_null_overall(store):
    trace = record(store, complete_event(), objects=_unavailable_judge_objects())
    assert trace.status == "complete"
    judge = trace.outcome["judge"]
    assert (judge["status"], judge["judge"], judge["overall"]) == (
        "judge_unavailable",
        "openai:gpt-4.1-mini",
        None,
    )
    assert judge["scores"] == []
    assert judge["stand_in"]["judge"] == "offline-heuristic v1"
    assert judge["stand_in"]["overall"] == 3.75
    assert len(judge["stand_in"]["scores"]) == 6
    headline = trace.public(brief=True)["outcome"]["judge"]
    assert headline == {
        "status": "judge_unavailable",
        "overall": None,
        "judge": "openai:gpt-4.1-mini",
        "stand_in_overall": 3.75,
    }


def test_an_ensembles_per_model_scores_and_flag_are_recorded(store):
    from prtrace.judge.result import ModelScores, ReviewFlag

    objects = stored_results()
    review = ReviewFlag(
        samples=2,
        spread={d: 0 for d in DIMENSION_IDS} | {"diagnosis": 4},
        threshold=2,
        needs_human_review=True,
        models=[
            ModelScores(judge="openai:a", samples=1, overall=3.0, scores={"diagnosis": 1}),
            ModelScores(judge="openai:b", samples=1, overall=4.5, scores={"diagnosis": 5}),
        ],
        reasons=["diagnosis: openai:a said 1, openai:b said 5 (spread 4 > 2)"],
    )
    ensemble = judge_result(judge="openai:a + openai:b", review=review)
    objects[judge_result_key("acme", TRACE_ID)] = ensemble.model_dump_json().encode()
    judge = record(store, complete_event(), objects=objects).outcome["judge"]
    assert judge["needs_human_review"] is True
    assert judge["review"]["reasons"] == review.reasons
    assert [(m["judge"], m["scores"]["diagnosis"]) for m in judge["review"]["models"]] == [
        ("openai:a", 1),
        ("openai:b", 5),
    ]
    assert judge["stand_in"] is None
