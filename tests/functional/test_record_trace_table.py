"""Record writes an ended trace's row to the Parquet traces table, under its tenant's
partitioned prefix, once: complete traces with their QA, judge and dataset columns (named as
in the export's traces.parquet), rejected and failed ones with their status and failure.
The file reads back with pyarrow and DuckDB."""

from __future__ import annotations

import io

import boto3
import duckdb
import orjson
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from local_cloud.resources import provision
from prtrace.adapters.dynamodb import DynamoTraceStore
from prtrace.adapters.wiring import BOTO_CONFIG
from prtrace.dataset.rows import split_of
from prtrace.dataset.trace_table import COLUMNS, trace_row, unusable_reasons
from prtrace.judge.rubric import DIMENSION_IDS
from prtrace.records import TraceRecord
from prtrace.storage_keys import document_key, qa_report_key
from tests.functional.test_record_handler import NAMES, aws, invoke, put_results
from tests.judge_factories import FAILING_TEST, HOSTILE_TEST, flagged_qa_report, sample_document
from tests.pipeline_factories import (
    TRACE_ID,
    complete_event,
    execution_ended,
    failed_event,
    rejected_event,
    stored_results,
)

__all__ = ["aws"]  # the fixture, shared


def table_objects() -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=NAMES.bucket, Prefix="tenants/acme/parquet/")
    return [o["Key"] for o in listed.get("Contents", [])]


def test_a_complete_trace_gets_one_row_under_tenant_and_date(aws, tmp_path):
    put_results(stored_results())
    invoke(complete_event())
    (key,) = table_objects()
    recorded_at = aws.get_trace("acme", TRACE_ID).outcome["recorded_at"]
    assert key == f"tenants/acme/parquet/traces/date={recorded_at[:10]}/{TRACE_ID}.parquet"
    body = boto3.client("s3").get_object(Bucket=NAMES.bucket, Key=key)["Body"].read()
    (row,) = pq.read_table(io.BytesIO(body)).to_pylist()
    assert row["trace_id"] == TRACE_ID
    assert row["status"] == "complete"
    assert row["qa_verdict"] == "resolved"
    assert row["judge_overall"] == 3.75
    assert all(isinstance(row[f"score_{d}"], int) for d in DIMENSION_IDS)
    local = tmp_path / "t.parquet"
    local.write_bytes(body)
    read = "select trace_id, qa_verdict from read_parquet(?)"
    assert duckdb.execute(read, [str(local)]).fetchall() == [(TRACE_ID, "resolved")]


def test_a_retried_record_leaves_the_row_as_written(aws):
    put_results(stored_results())
    invoke(complete_event())
    (key,) = table_objects()
    s3 = boto3.client("s3")
    first = s3.get_object(Bucket=NAMES.bucket, Key=key)
    invoke(complete_event())  # the state machine retried Record
    again = s3.get_object(Bucket=NAMES.bucket, Key=key)
    assert table_objects() == [key]
    assert again["ETag"] == first["ETag"]
    assert again["LastModified"] == first["LastModified"]


def only_row() -> dict[str, object]:
    (key,) = table_objects()
    body = boto3.client("s3").get_object(Bucket=NAMES.bucket, Key=key)["Body"].read()
    (row,) = pq.read_table(io.BytesIO(body)).to_pylist()
    return dict(row)


@pytest.mark.parametrize(
    ("event", "status", "stage", "code"),
    [
        (failed_event, "failed", "judge", "Lambda.ServiceException"),
        (rejected_event, "rejected", None, "chunk_mac_invalid"),
        (lambda: execution_ended("TIMED_OUT"), "failed", "pipeline", "States.Timeout"),
    ],
)
def test_a_trace_that_did_not_complete_has_a_row_with_its_status(aws, event, status, stage, code):
    invoke(event())
    row = only_row()
    assert (row["status"], row["failure_stage"], row["failure_code"]) == (status, stage, code)
    assert row["recorded_at"] == aws.get_trace("acme", TRACE_ID).outcome["recorded_at"]
    assert row["task_title"] == "t"
    nulls = ("qa_verdict", "qa_flags", "judge", "judge_overall", "metrics", "usable",
             "unusable_reasons", "fail_to_pass", "needs_human_review",
             *(f"score_{d}" for d in DIMENSION_IDS))  # fmt: skip
    assert {name: row[name] for name in nulls} == dict.fromkeys(nulls)


def test_an_execution_end_after_the_trace_s_own_record_leaves_its_row(aws):
    invoke(rejected_event())
    (key,) = table_objects()
    first = boto3.client("s3").get_object(Bucket=NAMES.bucket, Key=key)["ETag"]
    invoke(execution_ended("FAILED"))
    assert table_objects() == [key]
    assert boto3.client("s3").get_object(Bucket=NAMES.bucket, Key=key)["ETag"] == first
    assert only_row()["status"] == "rejected"


def test_a_complete_row_has_the_exports_dataset_columns(aws):
    put_results(stored_results())
    invoke(complete_event())
    row = only_row()
    assert (row["state_check"], row["trace_manifest_sha256"]) == (None, None)
    # The fixture's metadata names no repository and says nothing of a dirty tree.
    assert (row["repo"], row["split"], row["base_dirty"]) == (None, None, None)
    assert row["usable"] is False
    # The factory's QA report names no target test.
    assert orjson.loads(str(row["unusable_reasons"])) == ["no_target_tests", "base_unrecorded"]
    assert aws.get_trace("acme", TRACE_ID).status == "complete"


def test_the_row_has_the_verdicts_evidence_resolution_and_flag_codes(aws):
    report = flagged_qa_report(trace_id=TRACE_ID)
    stored = report.model_dump_json().encode()
    put_results(stored_results() | {qa_report_key("acme", TRACE_ID): stored})
    invoke(complete_event())
    (key,) = table_objects()
    body = boto3.client("s3").get_object(Bucket=NAMES.bucket, Key=key)["Body"].read()
    (row,) = pq.read_table(io.BytesIO(body)).to_pylist()
    assert (row["qa_verdict"], row["qa_resolution"], row["qa_target_source"]) == (
        "unresolved", "partial", "reproduction"
    )  # fmt: skip
    assert row["qa_verdict_reason"] == report.verdict_reason
    assert orjson.loads(row["qa_flags"]) == ["target_test_modified", "test_files_changed"]
    assert orjson.loads(row["qa_blocking_flags"]) == ["target_test_modified"]
    assert orjson.loads(row["qa_tamper_flags"]) == ["target_test_modified"]
    assert row["qa_flag_count"] == 2
    assert orjson.loads(row["qa_target_tests"]) == [FAILING_TEST, HOSTILE_TEST]
    assert (row["qa_unresolved_targets_count"], row["fail_to_absent_count"]) == (1, 1)
    assert orjson.loads(row["unusable_reasons"]) == ["tamper_flags", "base_unrecorded"]
    assert orjson.loads(row["fail_to_skipped"]) == ["tests/test_ranges.py::test_skipped"]
    assert pq.read_schema(io.BytesIO(body)).names == [c.name for c in COLUMNS]


def test_an_outcome_recorded_before_flags_has_null_evidence_columns():
    listed = {"count": 1, "ids": ["t::a"], "truncated": False}
    old_qa = {"verdict": "resolved", "fail_to_pass": listed}
    trace = TraceRecord(
        tenant="acme", trace_id=TRACE_ID, status="complete", created_at="2026-11-25T09:00:00.000Z",
        updated_at="2026-11-25T09:00:00.000Z", metadata={},
        outcome={"qa": old_qa, "recorded_at": "2026-11-25T09:00:00.000Z"},
    )  # fmt: skip
    row = trace_row(trace)
    for name in ("qa_flags", "qa_blocking_flags", "qa_tamper_flags", "qa_flag_count",
                 "qa_resolution", "qa_target_tests", "qa_target_tests_count"):  # fmt: skip
        assert row[name] is None, name
    assert set(row) == {c.name for c in COLUMNS}


def test_a_stand_in_has_its_own_columns_and_no_judge_overall():
    offline = {"judge": "offline-heuristic v1", "overall": 2.5, "scores": []}
    trace = TraceRecord(
        tenant="acme",
        trace_id=TRACE_ID,
        status="complete",
        created_at="2026-11-25T09:00:00.000Z",
        updated_at="2026-11-26T04:00:00.000Z",
        metadata={},
        outcome={
            "recorded_at": "2026-11-26T04:00:00.000Z",
            "judge": {
                "judge": "openai:gpt-4.1-mini",
                "status": "judge_unavailable",
                "overall": None,
                "scores": [],
                "stand_in": offline,
            },
        },
    )
    row = trace_row(trace)
    assert (row["judge"], row["judge_status"], row["judge_overall"]) == (
        "openai:gpt-4.1-mini",
        "judge_unavailable",
        None,
    )
    assert (row["judge_stand_in"], row["judge_stand_in_overall"]) == ("offline-heuristic v1", 2.5)
    assert set(row) == {c.name for c in COLUMNS}


def a_complete_trace(metadata: dict[str, object], outcome: dict[str, object]) -> TraceRecord:
    return TraceRecord(
        tenant="acme", trace_id=TRACE_ID, status="complete", created_at="2026-11-25T09:00:00.000Z",
        updated_at="2026-11-25T09:00:00.000Z", metadata=metadata,
        outcome={"recorded_at": "2026-11-25T09:00:00.000Z"} | outcome,
    )  # fmt: skip


def test_the_dataset_columns_mean_what_the_exports_do():
    listed = {"count": 1, "ids": ["t::a"], "truncated": False}
    qa = {"verdict": "resolved", "fail_to_pass": listed, "target_tests": listed, "flags": []}
    state = {"status": "state_mismatch", "first_mismatch": {"path": "src/a.py"},
             "unexplained_bytes": 12}  # fmt: skip
    signed = {"manifest_sha256": "ab" * 32, "key_id": "k-1", "algorithm": "ed25519"}
    url = "https://github.com/acme/widgets.git"
    task = {"title": "Fix it", "description": "The parser drops a field."}
    metadata = {"repository": {"url": url, "base_commit": "c" * 40, "dirty": False}, "task": task}
    row = trace_row(
        a_complete_trace(metadata, {"qa": qa, "state_check": state, "provenance": signed})
    )
    assert (row["repo"], row["repo_url"], row["split"]) == (
        "acme/widgets",
        url,
        split_of("acme/widgets"),
    )
    assert row["task_description"] == "The parser drops a field."
    assert (row["state_check"], row["state_first_mismatch"], row["state_unexplained_bytes"]) == (
        "state_mismatch", "src/a.py", 12
    )  # fmt: skip
    assert (row["trace_manifest_sha256"], row["trace_manifest_key_id"]) == ("ab" * 32, "k-1")
    assert (row["base_dirty"], row["usable"]) == (False, False)
    assert orjson.loads(row["unusable_reasons"]) == ["state_mismatch"]
    clean = trace_row(a_complete_trace(metadata, {"qa": qa}))
    assert (clean["usable"], clean["unusable_reasons"]) == (True, "[]")


@pytest.mark.parametrize(
    ("outcome", "dirty", "reasons"),
    [
        ({"qa": None}, True, ["no_qa", "base_dirty"]),
        ({"qa": {"verdict": "error", "target_tests": {"count": 0}}, "qa_skipped": "timeout"},
         False, ["no_qa"]),
        ({"qa": {"verdict": "error", "flags": [{"code": "target_test_modified"}]}}, None,
         ["qa_error", "no_target_tests", "tamper_flags", "base_unrecorded"]),
    ],
)  # fmt: skip
def test_unusable_reasons_follow_the_exports_order(outcome, dirty, reasons):
    assert unusable_reasons(outcome, dirty) == reasons


def test_a_complete_trace_s_events_are_written_beside_its_row(aws):
    document = sample_document().model_copy(update={"trace_id": TRACE_ID})
    stored = {document_key("acme", TRACE_ID): document.model_dump_json().encode()}
    put_results(stored_results() | stored)
    invoke(complete_event())
    recorded_at = aws.get_trace("acme", TRACE_ID).outcome["recorded_at"]
    date = recorded_at[:10]
    assert sorted(table_objects()) == [
        f"tenants/acme/parquet/events/date={date}/{TRACE_ID}.parquet",
        f"tenants/acme/parquet/traces/date={date}/{TRACE_ID}.parquet",
    ]
    key = f"tenants/acme/parquet/events/date={date}/{TRACE_ID}.parquet"
    body = boto3.client("s3").get_object(Bucket=NAMES.bucket, Key=key)["Body"].read()
    events = pq.read_table(io.BytesIO(body)).to_pylist()
    assert [e["seq"] for e in events] == list(range(11))
    assert {e["trace_id"] for e in events} == {TRACE_ID}


def test_a_trace_the_sweeper_ended_has_its_row(monkeypatch):
    from tests.functional import test_sweeper_handler as sweeping

    monkeypatch.setenv("PRTRACE_TRACES_TABLE", NAMES.traces_table)
    monkeypatch.setenv("PRTRACE_BUCKET", NAMES.bucket)
    monkeypatch.setenv("PRTRACE_STUCK_AFTER_S", str(sweeping.STUCK_AFTER_S))
    with mock_aws():
        provision(NAMES)
        sweeping.handler.reset()
        store = DynamoTraceStore(boto3.client("dynamodb", config=BOTO_CONFIG), NAMES.traces_table)
        sweeping.finalized(store, TRACE_ID, hours_ago=30)  # its pipeline never started
        assert sweeping.sweep()["ended"] == [TRACE_ID]
        sweeping.handler.reset()
        row = only_row()
    assert (row["status"], row["failure_stage"], row["failure_code"]) == (
        "failed", "pipeline", "PipelineStuck"
    )  # fmt: skip
