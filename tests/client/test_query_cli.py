"""`prtrace query`: syncs one tenant's Parquet traces table from the bucket and runs SQL
with DuckDB; other tenants' files are never read; bad input is a clear error."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import typer
from moto import mock_aws
from typer.testing import CliRunner

from bench.query import generated
from prtrace.adapters.s3 import S3BlobStore
from prtrace.dataset.trace_table import TraceTableWriter
from prtrace.storage_keys import document_key
from prtrace_cli.main import app
from prtrace_cli.query import find_bucket, s3_client
from tests.judge_factories import sample_document

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


def test_a_bad_tenant_or_no_bucket_is_refused(monkeypatch, tmp_path):
    monkeypatch.delenv("PRTRACE_BUCKET", raising=False)
    monkeypatch.chdir(tmp_path)  # no .prtrace/local.json here or above
    no_bucket = query("SELECT 1", "--tenant", "bench")
    assert no_bucket.exit_code == 2
    said = " ".join(no_bucket.output.split())
    for place in ("--bucket", "PRTRACE_BUCKET", ".prtrace/local.json", str(tmp_path)):
        assert place in said, place
    bad = query("SELECT 1", "--tenant", "../x", "--bucket", BUCKET)
    assert bad.exit_code == 2
    assert "not a tenant name" in bad.output


def test_the_cli_does_not_import_duckdb_or_boto3_to_start():
    code = "import sys, prtrace_cli.main; print(sorted({'duckdb', 'boto3'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def local_cloud_record(directory: Path, bucket: str, endpoint: str | None = None) -> Path:
    state = directory / ".prtrace" / "local.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({
        "aws_endpoint": endpoint, "region": "eu-west-1", "outputs": {"DataBucketName": bucket},
    }))  # fmt: skip
    return state


def test_the_bucket_is_found_in_the_local_clouds_record_from_a_subdirectory(
    bucket, tmp_path, monkeypatch
):
    monkeypatch.delenv("PRTRACE_BUCKET", raising=False)
    local_cloud_record(tmp_path, bucket)  # no endpoint: moto's mock answers
    below = tmp_path / "src" / "pkg"
    below.mkdir(parents=True)
    monkeypatch.chdir(below)
    result = query("SELECT count(*) AS n FROM traces", "--tenant", "bench",
                   "--cache", str(tmp_path / "cache"), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"n": 6}


def test_the_local_clouds_endpoint_is_used_unless_the_environment_names_one(tmp_path, monkeypatch):
    local_cloud_record(tmp_path, "local-bucket", endpoint="http://127.0.0.1:4566")
    found = find_bucket(None, {}, tmp_path)
    assert (found.bucket, found.endpoint, found.region) == (
        "local-bucket", "http://127.0.0.1:4566", "eu-west-1"
    )  # fmt: skip
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a-real-key")
    client = s3_client(found)
    assert (client.meta.endpoint_url, client.meta.region_name) == (
        "http://127.0.0.1:4566", "eu-west-1"
    )  # fmt: skip
    # The local cloud takes any credentials: the environment's are not sent to it.
    assert client._request_signer._credentials.access_key == "local"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    assert s3_client(found).meta.endpoint_url == "http://127.0.0.1:5000"


def test_the_option_then_the_environment_win_over_the_local_cloud(tmp_path):
    local_cloud_record(tmp_path, "from-local-json")
    env = {"PRTRACE_BUCKET": "from-env"}
    assert find_bucket("from-option", env, tmp_path).source == "--bucket"
    assert find_bucket(None, env, tmp_path).bucket == "from-env"
    assert find_bucket(None, {}, tmp_path).bucket == "from-local-json"
    assert find_bucket(None, {}, tmp_path).source == str(tmp_path / ".prtrace" / "local.json")


def test_a_local_cloud_record_without_the_bucket_is_named_in_the_error(tmp_path):
    state = tmp_path / ".prtrace" / "local.json"
    state.parent.mkdir()
    state.write_text('{"endpoint": "http://127.0.0.1:8080", "outputs": {}}')
    with pytest.raises(typer.BadParameter, match=r"names no outputs\.DataBucketName"):
        find_bucket(None, {}, tmp_path)


def test_the_events_view_holds_each_complete_traces_events(bucket, tmp_path):
    s3 = boto3.client("s3", region_name="us-east-1")
    trace = generated(0)
    document = sample_document().model_copy(update={"trace_id": trace.trace_id})
    key = document_key("bench", trace.trace_id)
    s3.put_object(Bucket=bucket, Key=key, Body=document.model_dump_json().encode())
    TraceTableWriter(S3BlobStore(s3, bucket)).write(trace)  # its events, beside its row
    sql = (
        "SELECT e.trace_id, count(*) AS n, min(typeof(e.time)) AS time_type, "
        "min(t.qa_verdict) AS verdict FROM events e JOIN traces t USING (trace_id) GROUP BY 1"
    )
    result = query(sql, "--tenant", "bench", "--bucket", bucket, "--cache", str(tmp_path),
                   "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "trace_id": trace.trace_id, "n": 11, "time_type": "TIMESTAMP WITH TIME ZONE",
        "verdict": trace.outcome["qa"]["verdict"],
    }  # fmt: skip
    assert "events table: 1 files (1 downloaded)" in result.stderr


def test_a_tenant_without_files_has_empty_views_with_the_columns(bucket, tmp_path):
    result = query("SELECT * FROM events, traces", "--tenant", "nobody", "--bucket", bucket,
                   "--cache", str(tmp_path))  # fmt: skip
    assert result.exit_code == 0, result.output
    (header,) = result.stdout.splitlines()
    assert {"time", "payload", "usable", "unusable_reasons", "repo"} <= set(header.split("\t"))
