"""The PrepareQa step's grant used over real HTTP against moto's server: the QA task's
store (prtrace.adapters.presigned_store) reads and writes exactly its trace's objects with
it, and nothing else. moto does not check presigned signatures or POST policies
(tests/s3_presigned.py shows what S3 would refuse); it does honour `If-None-Match: *`,
so the report's write-once is shown here against the server itself."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from functions.qa_grant import handler
from prtrace.adapters import wiring
from prtrace.adapters.presigned_store import KeyNotGranted, PresignedArtifactStore
from prtrace.adapters.wiring import S3_CONFIG
from prtrace.qa.grant import parse_grant
from prtrace.qa.ports import ArtifactMissing, ArtifactTooLarge
from prtrace.schema import artifact_uri
from prtrace.storage_keys import artifact_key, document_key, qa_report_key
from tests.in_process_gateway import LambdaContext
from tests.moto_server import moto_server

BUCKET = "prtrace-grant-tests"
TENANT = "acme"
TRACE = "tr_01JD0000000000000000000001"
OTHER = "tr_01JD0000000000000000000002"
BASE = b"base snapshot bytes" * 100
FINAL = b"final snapshot bytes" * 100


def _ref(body: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(body).hexdigest()
    return {
        "uri": artifact_uri(digest),
        "sha256": digest,
        "size": len(body),
        "media_type": "application/x-tar",
    }


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with moto_server() as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("PRTRACE_BUCKET", BUCKET)
        monkeypatch.setenv("PRTRACE_QA_GRANT_TTL_S", "600")
        handler.reset()
        client = boto3.client("s3", config=S3_CONFIG)
        client.create_bucket(Bucket=BUCKET)
        for trace in (TRACE, OTHER):
            client.put_object(Bucket=BUCKET, Key=document_key(TENANT, trace), Body=b"{}")
            for body in (BASE, FINAL):
                key = artifact_key(TENANT, trace, hashlib.sha256(body).hexdigest())
                client.put_object(Bucket=BUCKET, Key=key, Body=body)
        yield client
        handler.reset()


def _grant() -> PresignedArtifactStore:
    event = {
        "tenant": TENANT,
        "trace_id": TRACE,
        "document_key": document_key(TENANT, TRACE),
        "qa_report_key": qa_report_key(TENANT, TRACE),
        "snapshots": {"base": _ref(BASE), "final": _ref(FINAL)},
        "ignored": "other state",
    }
    answer = handler.lambda_handler(event, LambdaContext())
    grant = parse_grant(answer["grant"])
    assert answer["expires_at"].startswith(grant.expires_at.strftime("%Y-%m-%dT%H:%M"))
    return PresignedArtifactStore(grant)


def test_the_task_reads_its_document_and_snapshots_and_nothing_else(s3: Any) -> None:
    store = _grant()
    for key, body in (
        (document_key(TENANT, TRACE), b"{}"),
        (artifact_key(TENANT, TRACE, hashlib.sha256(BASE).hexdigest()), BASE),
        (artifact_key(TENANT, TRACE, hashlib.sha256(FINAL).hexdigest()), FINAL),
    ):
        out = io.BytesIO()
        assert store.download(key, out, max_bytes=len(body)) == len(body)
        assert out.getvalue() == body
    with pytest.raises(ArtifactTooLarge):
        store.download(document_key(TENANT, TRACE), io.BytesIO(), max_bytes=1)
    # Another trace's objects (the same snapshots, even) are not in the grant.
    for key in (
        document_key(TENANT, OTHER),
        artifact_key(TENANT, OTHER, hashlib.sha256(BASE).hexdigest()),
    ):
        with pytest.raises(ArtifactMissing, match="not in this task's grant"):
            store.download(key, io.BytesIO(), max_bytes=10**6)


def test_the_report_is_written_once_and_artifacts_only_under_the_trace(s3: Any) -> None:
    store = _grant()
    report_key = qa_report_key(TENANT, TRACE)
    first, second = b'{"verdict": "resolved"}', b'{"verdict": "forged"}'
    assert store.put_if_absent(report_key, first, hashlib.sha256(first).hexdigest(), "x")
    # An existing report is never replaced: S3 answers 412 to the signed If-None-Match.
    assert not store.put_if_absent(report_key, second, hashlib.sha256(second).hexdigest(), "x")
    assert s3.get_object(Bucket=BUCKET, Key=report_key)["Body"].read() == first

    log = b"== stdout ==\n1 passed\n"
    digest = hashlib.sha256(log).hexdigest()
    assert store.put_if_absent(artifact_key(TENANT, TRACE, digest), log, digest, "text/plain")
    stored = s3.get_object(Bucket=BUCKET, Key=artifact_key(TENANT, TRACE, digest))
    assert stored["Body"].read() == log
    assert stored["ContentType"] == "text/plain"
    for key in (
        artifact_key(TENANT, OTHER, digest),
        qa_report_key(TENANT, OTHER),
        document_key(TENANT, TRACE),
    ):
        with pytest.raises(KeyNotGranted):
            store.put_if_absent(key, log, digest, "text/plain")
    assert "Contents" not in s3.list_objects_v2(
        Bucket=BUCKET, Prefix=f"tenants/{TENANT}/traces/{OTHER}/qa/"
    )


def test_bad_input_fails_the_step_with_the_reason(s3: Any) -> None:
    event = {
        "tenant": TENANT,
        "trace_id": TRACE,
        "document_key": document_key(TENANT, OTHER),
        "qa_report_key": qa_report_key(TENANT, TRACE),
        "snapshots": {"base": _ref(BASE), "final": _ref(FINAL)},
    }
    with pytest.raises(ValueError, match=r"document_key .* is not a plain key under the trace"):
        handler.lambda_handler(event, LambdaContext())


def test_with_the_package_proxy_the_grant_carries_a_fresh_read_token(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stack's PyPI proxy (CodeArtifact): PrepareQa asks for a read token with what the
    stack configured and hands it to the task in the grant; without the proxy, none. (moto
    has no CodeArtifact: botocore's Stubber answers the real client's call.)"""
    codeartifact = boto3.client(
        "codeartifact",
        region_name="eu-west-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )
    stub = Stubber(codeartifact)
    stub.add_response(
        "get_authorization_token",
        {"authorizationToken": "proxy-read-token", "expiration": datetime(2030, 1, 1)},
        {"domain": "prtrace-prod", "domainOwner": "111122223333", "durationSeconds": 3600},
    )
    real_client = wiring.boto3.client
    monkeypatch.setattr(
        wiring.boto3,
        "client",
        lambda service, **kw: (
            codeartifact if service == "codeartifact" else real_client(service, **kw)
        ),
    )
    assert _grant()._grant.package_index_token is None
    for name, value in (
        ("DOMAIN", "prtrace-prod"),
        ("OWNER", "111122223333"),
        ("REPOSITORY", "qa-pypi"),
    ):
        monkeypatch.setenv(f"PRTRACE_QA_CODEARTIFACT_{name}", value)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    handler.reset()
    with stub:
        assert _grant()._grant.package_index_token == "proxy-read-token"
        stub.assert_no_pending_responses()
