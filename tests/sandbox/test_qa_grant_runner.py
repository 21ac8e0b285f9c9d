"""The QA task end to end through its grant only: the PrepareQa handler signs the grant
against moto's server, and `python -m functions.qa_runner` runs with PRTRACE_QA_GRANT and
no AWS credentials, endpoint or bucket in its environment. It stores its report and logs,
leaves another trace untouched, and never replaces a stored report. Runs bwrap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3

from functions.qa_grant import handler
from prtrace.adapters.wiring import S3_CONFIG
from prtrace.storage_keys import document_key, qa_report_key
from tests.in_process_gateway import LambdaContext
from tests.moto_server import moto_server
from tests.sandbox.conftest import Backend
from tests.sandbox.test_qa_runner import BUCKET, TENANT, TRACE, _document, _upload, snapshots

__all__ = ["snapshots"]  # the fixture, shared with test_qa_runner
ROOT = Path(__file__).resolve().parents[2]


def _run(grant: str) -> subprocess.CompletedProcess[str]:
    # Nothing that reaches AWS: no credentials, no endpoint, no bucket, no profile.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "PRTRACE_")) and k != "BOTO_CONFIG"
    }
    env |= {"PRTRACE_SANDBOX_BACKEND": "bwrap", "PRTRACE_QA_GRANT": grant, "HOME": "/nonexistent"}
    return subprocess.run(
        [sys.executable, "-m", "functions.qa_runner"],
        env=env, capture_output=True, text=True, timeout=180, check=False, cwd=ROOT,
    )  # fmt: skip


def test_the_task_runs_on_its_grant_alone(
    bwrap: Backend, snapshots: tuple[bytes, bytes], monkeypatch: Any
) -> None:
    with moto_server() as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("PRTRACE_BUCKET", BUCKET)
        handler.reset()
        s3 = boto3.client("s3", config=S3_CONFIG)
        s3.create_bucket(Bucket=BUCKET)
        base = _upload(s3, snapshots[0], "application/gzip")
        final = _upload(s3, snapshots[1], "application/gzip")
        s3.put_object(Bucket=BUCKET, Key=document_key(TENANT, TRACE), Body=_document(base, final))
        event = {
            "tenant": TENANT,
            "trace_id": TRACE,
            "document_key": document_key(TENANT, TRACE),
            "qa_report_key": qa_report_key(TENANT, TRACE),
            "snapshots": {"base": base.model_dump(), "final": final.model_dump()},
        }
        grant = handler.lambda_handler(event, LambdaContext())["grant"]
        handler.reset()
        before = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}

        done = _run(grant)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["verdict"] == "resolved"
        assert summary["stored"] == "written"
        assert grant not in done.stdout + done.stderr  # the grant is never printed
        report_key = qa_report_key(TENANT, TRACE)
        report = json.loads(s3.get_object(Bucket=BUCKET, Key=report_key)["Body"].read())
        assert report["fail_to_pass"] == ["tests/test_ranges.py::test_merge_keeps_last_interval"]
        after = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
        written = after - before
        prefix = f"tenants/{TENANT}/traces/{TRACE}/"
        assert report_key in written
        assert {report["base"]["log_key"], report["final"]["log_key"]} <= written
        assert all(key.startswith(prefix) for key in written)

        # A second run (a retried task) finds the report and leaves it as it was.
        stored = s3.get_object(Bucket=BUCKET, Key=report_key)["Body"].read()
        again = _run(grant)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["stored"] == "already stored"
        assert s3.get_object(Bucket=BUCKET, Key=report_key)["Body"].read() == stored


def test_a_malformed_grant_is_unusable_input() -> None:
    done = _run('{"version": 1, "tenant": "acme", "secret-looking": "s3cr3t"}')
    assert done.returncode == 2
    error = json.loads(done.stderr)["error"]
    assert error.startswith("PRTRACE_QA_GRANT is not a valid QA grant: ")
    assert "s3cr3t" not in done.stderr
