"""Record writes a complete trace's row to the Parquet traces table, under its tenant's
partitioned prefix, once; other outcomes write nothing. The file reads back with pyarrow
and DuckDB."""

from __future__ import annotations

import io

import boto3
import duckdb
import orjson
import pyarrow.parquet as pq

from prtrace.dataset.trace_table import COLUMNS, trace_row
from prtrace.judge.rubric import DIMENSION_IDS
from prtrace.records import TraceRecord
from prtrace.storage_keys import qa_report_key
from tests.functional.test_record_handler import NAMES, aws, invoke, put_results
from tests.judge_factories import FAILING_TEST, HOSTILE_TEST, flagged_qa_report
from tests.pipeline_factories import TRACE_ID, complete_event, failed_event, stored_results

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


def test_a_failed_trace_writes_no_row(aws):
    invoke(failed_event())
    assert table_objects() == []


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
    assert orjson.loads(row["target_tests"]) == [FAILING_TEST, HOSTILE_TEST]
    assert (row["unresolved_targets_count"], row["fail_to_absent_count"]) == (1, 1)
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
                 "qa_resolution", "target_tests", "target_tests_count"):  # fmt: skip
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
