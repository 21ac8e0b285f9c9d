"""Record writes a complete trace's row to the Parquet traces table, under its tenant's
partitioned prefix, once; other outcomes write nothing. The file reads back with pyarrow
and DuckDB."""

from __future__ import annotations

import io

import boto3
import duckdb
import pyarrow.parquet as pq

from prtrace.judge.rubric import DIMENSION_IDS
from tests.functional.test_record_handler import NAMES, aws, invoke, put_results
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
