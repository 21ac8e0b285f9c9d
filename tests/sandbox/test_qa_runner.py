"""The QA container task's entry point against S3 (moto): from a trace document or from
snapshot keys, a report is always stored (exit 0), even for verdict `error`; exit 1 only
when no report can be stored. Runs the real bwrap sandbox."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.qa_runner.main import main
from prtrace.assemble.document import ChainSummary, TraceDocument, WorkspaceSnapshots
from prtrace.schema import BlobRef, TraceMetadata
from prtrace.storage_keys import artifact_key
from tests.factories import trace_metadata
from tests.moto_server import moto_server
from tests.sandbox.archives import Member, tar_bytes
from tests.sandbox.conftest import EXAMPLE_REPO, Backend

BUCKET = "prtrace-qa-tests"
TENANT = "acme"
TRACE = "tr_01JQA0000000000000000000QA"
FIX = ("    if current is not None and not merged:\n", "    if current is not None:\n")


def _tar(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(directory, arcname=".")
    return buffer.getvalue()


def _upload(s3: Any, body: bytes, media_type: str) -> BlobRef:
    digest = hashlib.sha256(body).hexdigest()
    s3.put_object(Bucket=BUCKET, Key=artifact_key(TENANT, TRACE, digest), Body=body)
    return BlobRef(
        uri=f"artifact://sha256/{digest}", sha256=digest, size=len(body), media_type=media_type
    )


@pytest.fixture
def snapshots(scratch: Path) -> tuple[bytes, bytes]:
    fixed = scratch / "fixed"
    shutil.copytree(EXAMPLE_REPO, fixed)
    merge = fixed / "ranges" / "merge.py"
    merge.write_text(merge.read_text().replace(*FIX))
    return _tar(EXAMPLE_REPO), _tar(fixed)


@pytest.fixture
def s3(bwrap: Backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("PRTRACE_SANDBOX_BACKEND", "bwrap")
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client


def _document(base: BlobRef, final: BlobRef | None) -> bytes:
    document = TraceDocument(
        trace_id=TRACE,
        metadata=TraceMetadata.model_validate(trace_metadata()),
        events=[],
        chain=ChainSummary(key_id="k1", head="0" * 64, length=0),
        snapshots=WorkspaceSnapshots(base=base, final=final) if final else None,
        metrics={},
    )
    return document.model_dump_json().encode()


def _report(s3: Any, key: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    return loaded


def test_from_the_trace_document(
    s3: Any, snapshots: tuple[bytes, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    base = _upload(s3, snapshots[0], "application/gzip")
    final = _upload(s3, snapshots[1], "application/gzip")
    document_key = f"tenants/{TENANT}/traces/{TRACE}/document.json"
    s3.put_object(Bucket=BUCKET, Key=document_key, Body=_document(base, final))
    code = main(["--trace-id", TRACE, "--bucket", BUCKET, "--document-key", document_key])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip())  # exactly one line
    report_key = f"tenants/{TENANT}/traces/{TRACE}/qa/report.json"
    assert summary["verdict"] == "resolved"
    assert summary["report_key"] == report_key
    report = _report(s3, report_key)
    assert report["verdict"] == "resolved"
    assert report["fail_to_pass"] == ["tests/test_ranges.py::test_merge_keeps_last_interval"]
    assert report["backend"] == "bwrap"
    # The logs and JUnit files the report names are stored next to the trace's artifacts.
    for side in ("base", "final"):
        for name in ("log_key", "junit_key"):
            key = report[side][name]
            assert key.startswith(f"tenants/{TENANT}/traces/{TRACE}/artifacts/sha256/")
            s3.head_object(Bucket=BUCKET, Key=key)


def test_from_snapshot_keys_in_the_environment(
    s3: Any, snapshots: tuple[bytes, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    for side, body in zip(("BASE", "FINAL"), snapshots, strict=True):
        digest = hashlib.sha256(body).hexdigest()
        key = f"uploads/{side.lower()}.tar.gz"  # any key: the caller names it
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        monkeypatch.setenv(f"PRTRACE_{side}_KEY", key)
        monkeypatch.setenv(f"PRTRACE_{side}_SHA256", digest)
        monkeypatch.setenv(f"PRTRACE_{side}_SIZE", str(len(body)))
        monkeypatch.setenv(f"PRTRACE_{side}_MEDIA_TYPE", "application/gzip")
    monkeypatch.setenv("PRTRACE_TRACE_ID", TRACE)
    monkeypatch.setenv("PRTRACE_BUCKET", BUCKET)
    monkeypatch.setenv("PRTRACE_TENANT", TENANT)
    monkeypatch.setenv("PRTRACE_REPORT_KEY", "reports/qa.json")
    assert main([]) == 0
    assert _report(s3, "reports/qa.json")["verdict"] == "resolved"


def test_unsafe_snapshot_still_stores_an_error_report(
    s3: Any, snapshots: tuple[bytes, bytes]
) -> None:
    base = _upload(s3, snapshots[0], "application/gzip")
    evil = tar_bytes([Member("x", tarfile.SYMTYPE, linkname="/etc/shadow")])
    final = _upload(s3, evil, "application/x-tar")
    document_key = f"tenants/{TENANT}/traces/{TRACE}/document.json"
    s3.put_object(Bucket=BUCKET, Key=document_key, Body=_document(base, final))
    assert main(["--trace-id", TRACE, "--bucket", BUCKET, "--document-key", document_key]) == 0
    report = _report(s3, f"tenants/{TENANT}/traces/{TRACE}/qa/report.json")
    assert report["verdict"] == "error"
    assert report["error_reason"] == "unsafe_archive"
    assert "'x'" in report["error_detail"]


def test_missing_document_or_snapshots_store_an_infra_error_report(
    s3: Any, snapshots: tuple[bytes, bytes]
) -> None:
    key = f"tenants/{TENANT}/traces/{TRACE}/missing.json"
    assert main(["--trace-id", TRACE, "--bucket", BUCKET, "--document-key", key]) == 0
    report = _report(s3, f"tenants/{TENANT}/traces/{TRACE}/qa/report.json")
    assert (report["verdict"], report["error_reason"]) == ("error", "infra_error")
    no_snapshots = f"tenants/{TENANT}/traces/{TRACE}/bare.json"
    s3.put_object(
        Bucket=BUCKET,
        Key=no_snapshots,
        Body=_document(_upload(s3, b"x", "application/x-tar"), None),
    )
    report_key = "reports/bare.json"
    assert (
        main(
            [
                "--trace-id",
                TRACE,
                "--bucket",
                BUCKET,
                "--document-key",
                no_snapshots,
                "--report-key",
                report_key,
            ]
        )
        == 0
    )
    assert "no workspace snapshots" in _report(s3, report_key)["error_detail"]


def test_exit_codes_when_no_report_can_be_stored(s3: Any) -> None:
    assert main(["--trace-id", TRACE, "--document-key", "tenants/a/traces/b/d.json"]) == 2
    assert main(["--trace-id", TRACE, "--bucket", BUCKET]) == 2  # no snapshot source
    code = main(
        [
            "--trace-id",
            TRACE,
            "--bucket",
            "no-such-bucket",
            "--document-key",
            f"tenants/{TENANT}/traces/{TRACE}/document.json",
        ]
    )
    assert code == 1


def test_entry_point_runs_as_a_module(bwrap: Backend, snapshots: tuple[bytes, bytes]) -> None:
    """`python -m functions.qa_runner` as the ECS task (and the local cloud) starts it."""
    with moto_server() as endpoint:
        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket=BUCKET)
        base = _upload(client, snapshots[0], "application/gzip")
        final = _upload(client, snapshots[1], "application/gzip")
        document_key = f"tenants/{TENANT}/traces/{TRACE}/document.json"
        client.put_object(Bucket=BUCKET, Key=document_key, Body=_document(base, final))
        env = os.environ | {
            "AWS_ENDPOINT_URL": endpoint,
            "PRTRACE_SANDBOX_BACKEND": "bwrap",
            "PRTRACE_TRACE_ID": TRACE,
            "PRTRACE_BUCKET": BUCKET,
            "PRTRACE_DOCUMENT_KEY": document_key,
        }
        done = subprocess.run(
            [sys.executable, "-m", "functions.qa_runner"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert done.returncode == 0, done.stderr
        lines = done.stdout.strip().splitlines()
        assert len(lines) == 1
        assert json.loads(lines[0])["verdict"] == "resolved"
        report = _report(client, f"tenants/{TENANT}/traces/{TRACE}/qa/report.json")
        assert report["fail_to_pass"] == ["tests/test_ranges.py::test_merge_keeps_last_interval"]
