"""`prtrace query`: syncs one tenant's Parquet traces table from the bucket and runs SQL
with DuckDB; other tenants' files are never read; bad input is a clear error."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from bench.query import generated
from prtrace.adapters.s3 import S3BlobStore
from prtrace.dataset.trace_table import TraceTableWriter
from prtrace_cli.main import app

BUCKET = "prtrace-query-test"


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        writer = TraceTableWriter(S3BlobStore(s3, BUCKET))
        for n in range(6):
            writer.write(generated(n))  # tenant "bench"
        other = generated(99)
        writer.write(type(other)(**{**other.__dict__, "tenant": "other"}))
        yield BUCKET


def query(*args: str) -> object:
    return CliRunner().invoke(app, ["query", *args])


def test_a_query_over_the_tenants_traces(bucket, tmp_path):
    result = query(
        "SELECT qa_verdict, count(*) AS n FROM traces GROUP BY 1 ORDER BY 1",
        "--tenant", "bench", "--bucket", bucket, "--cache", str(tmp_path), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows == [
        {"qa_verdict": "error", "n": 2},
        {"qa_verdict": "resolved", "n": 2},
        {"qa_verdict": "unresolved", "n": 2},
    ]
    assert "6 files (6 downloaded)" in result.stderr


def test_the_tab_separated_default_output(bucket, tmp_path):
    result = query("SELECT tenant, trace_id FROM traces ORDER BY trace_id LIMIT 1",
                   "--tenant", "other", "--bucket", bucket, "--cache", str(tmp_path))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["tenant\ttrace_id", f"other\ttr_{99:026d}"]


def test_bad_sql_is_reported_not_a_traceback(bucket, tmp_path):
    result = query("SELEC nothing", "--tenant", "bench", "--bucket", bucket,
                   "--cache", str(tmp_path))  # fmt: skip
    assert result.exit_code == 2
    assert "query failed" in result.stderr


def test_a_bad_tenant_or_no_bucket_is_refused(monkeypatch):
    monkeypatch.delenv("PRTRACE_BUCKET", raising=False)
    no_bucket = query("SELECT 1", "--tenant", "bench")
    assert no_bucket.exit_code == 2
    assert "--bucket" in no_bucket.output
    bad = query("SELECT 1", "--tenant", "../x", "--bucket", BUCKET)
    assert bad.exit_code == 2
    assert "not a tenant name" in bad.output


def test_the_cli_does_not_import_duckdb_or_boto3_to_start():
    code = "import sys, prtrace_cli.main; print(sorted({'duckdb', 'boto3'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
