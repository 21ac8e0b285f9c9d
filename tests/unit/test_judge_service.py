"""The Judge step's storage rules with an in-memory store: write once, first result wins."""

from __future__ import annotations

import hashlib

import pytest

from prtrace.judge.result import OFFLINE_JUDGE, JudgeResult
from prtrace.judge.rubric import load_rubric
from prtrace.judge.service import (
    JudgeInputMissing,
    JudgeRequest,
    encode_result,
    judge_trace,
    run_judge_step,
)
from tests.judge_factories import qa_report, sample_document

RUBRIC = load_rubric()
REQUEST = JudgeRequest("tr_sample", "doc.json", "qa.json", "result.json")


class DictStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts = 0

    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def put_if_absent(self, key: str, body: bytes, sha256_hex: str, content_type: str) -> bool:
        assert hashlib.sha256(body).hexdigest() == sha256_hex
        self.puts += 1
        if key in self.objects:
            return False
        self.objects[key] = body
        return True


class RacingStore(DictStore):
    """Another invocation stores its result between our read and our write."""

    def __init__(self, theirs: bytes) -> None:
        super().__init__()
        self.theirs = theirs

    def put_if_absent(self, key: str, body: bytes, sha256_hex: str, content_type: str) -> bool:
        self.objects.setdefault(key, self.theirs)
        return super().put_if_absent(key, body, sha256_hex, content_type)


def _store(cls=DictStore, *args) -> DictStore:
    store = cls(*args)
    store.objects["doc.json"] = sample_document().model_dump_json().encode()
    store.objects["qa.json"] = qa_report(trace_id="tr_sample").model_dump_json().encode()
    return store


def _no_model():
    return None


def test_result_written_once_and_deterministic():
    store = _store()
    result = run_judge_step(REQUEST, store, RUBRIC, _no_model)
    assert result.judge == OFFLINE_JUDGE
    assert store.objects["result.json"] == encode_result(result)
    again = run_judge_step(REQUEST, _store(), RUBRIC, _no_model)
    assert encode_result(again) == encode_result(result)  # same inputs, same bytes


def test_stored_result_short_circuits_without_building_a_model():
    store = _store()
    run_judge_step(REQUEST, store, RUBRIC, _no_model)

    def model_must_not_be_built():
        raise AssertionError("judged twice")

    run_judge_step(REQUEST, store, RUBRIC, model_must_not_be_built)
    assert store.puts == 1


def test_losing_a_race_returns_the_stored_result():
    theirs = judge_trace(sample_document(), None, RUBRIC, None)
    store = _store(RacingStore, encode_result(theirs))
    result = run_judge_step(REQUEST, store, RUBRIC, _no_model)
    assert result == theirs
    assert result.qa_verdict is None  # theirs, not ours (ours saw the QA report)
    assert JudgeResult.model_validate_json(store.objects["result.json"]) == theirs


def test_missing_qa_report_named_by_the_request_is_an_error():
    store = _store()
    del store.objects["qa.json"]
    with pytest.raises(JudgeInputMissing, match="QA report"):
        run_judge_step(REQUEST, store, RUBRIC, _no_model)


def test_qa_report_of_another_trace_is_refused():
    store = _store()
    store.objects["qa.json"] = qa_report(trace_id="tr_other").model_dump_json().encode()
    with pytest.raises(ValueError, match="is not trace tr_sample"):
        run_judge_step(REQUEST, store, RUBRIC, _no_model)
    assert "result.json" not in store.objects
