"""Signed manifests through the deployed code paths, in moto (DynamoDB, S3, KMS with an
ECC_NIST_P256 key): Assemble writes the draft, Record signs it with KMS, the API publishes
the JWKS (no token) and the bundle's links, and the downloaded bundle verifies offline
with nothing but the published keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest

from functions.assemble import handler as assemble_handler
from functions.record import handler as record_handler
from prtrace.provenance.manifest import load_public_keys
from prtrace.storage_keys import artifact_key, judge_result_key, qa_report_key
from prtrace_client import PrtraceClient
from prtrace_client.provenance import chunk_name, download_bundle, verify_bundle
from tests.assemble_support import artifacts_of, canonical_body, chunked, session
from tests.factories import blob_ref, trace_metadata
from tests.functional.conftest import Client, api_not_built_yet
from tests.functional.test_pipeline_api import set_status, store
from tests.in_process_gateway import LambdaContext
from tests.judge_factories import qa_report
from tests.pipeline_factories import judge_result
from tests.unit.test_state_check import tar_gz


@pytest.fixture
def signing_key(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    kms = boto3.client("kms")
    key = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]
    arn = key["Arn"]
    monkeypatch.setenv("PRTRACE_SIGNING_KEY_ID", arn)
    # The same key by its id: the recorded calls then name the setting each function read
    # (tests/infra/aws_calls.py), where the stack gives both the key's ARN.
    monkeypatch.setenv("PRTRACE_SIGNING_KEY_IDS", key["KeyId"])
    api_not_built_yet()
    for module in (assemble_handler, record_handler):
        module.reset()
    yield arn
    for module in (assemble_handler, record_handler):
        module.reset()


def complete(trace_id: str) -> dict[str, Any]:
    """Assemble, a QA report and a judge result, then Record: what the pipeline does."""
    set_status(trace_id, "assembling")
    assembled = assemble_handler.lambda_handler(
        {"tenant": "acme", "trace_id": trace_id}, LambdaContext()
    )
    assert assembled["outcome"] == "assembled", assembled
    store(qa_report_key("acme", trace_id), qa_report(trace_id=trace_id).model_dump_json().encode())
    store(judge_result_key("acme", trace_id), judge_result(trace_id).model_dump_json().encode())
    for status in ("testing", "judging"):
        set_status(trace_id, status)
    event = {
        "tenant": "acme",
        "trace_id": trace_id,
        "status": "complete",
        "assembled": assembled,
        "qa": {"report_key": qa_report_key("acme", trace_id), "skipped": None},
        "judge_result_key": judge_result_key("acme", trace_id),
    }
    record_handler.lambda_handler(event, LambdaContext())
    return assembled


def finalized_trace(client: Client) -> str:
    """Six events in two chunks, their artifacts and two real snapshot archives."""
    trace_id = client.call("POST", "/v1/traces", trace_metadata()).json()["trace_id"]
    chunks = chunked(session(0, 6), 3)
    for seq, events in enumerate(chunks):
        response = client.call(
            "PUT", f"/v1/traces/{trace_id}/chunks/{seq}", raw=canonical_body(events)
        )
        assert response.status == 201, response.body
    base, final = tar_gz({"a.py": b"x = 1\n"}), tar_gz({"a.py": b"x = 2\n"})
    for content in [*artifacts_of(chunks), base, final]:
        store(artifact_key("acme", trace_id, blob_ref(content)["sha256"]), content)
    body = {
        "expected_chunks": 2,
        "snapshots": {
            "base": blob_ref(base, "application/gzip"),
            "final": blob_ref(final, "application/gzip"),
        },
    }
    response = client.call("POST", f"/v1/traces/{trace_id}/finalize", body)
    assert response.status == 202, response.body
    return trace_id


def test_a_signed_trace_downloads_and_verifies_with_the_published_keys(
    gateway: Any, client: Client, sdk: PrtraceClient, signing_key: str, tmp_path: Path
) -> None:
    trace_id = finalized_trace(client)
    complete(trace_id)

    keys = Client(gateway, None).call("GET", "/v1/keys")  # public: no token
    assert keys.status == 200, keys.body
    jwks = keys.json()
    assert [(k["kty"], k["crv"], k["alg"]) for k in jwks["keys"]] == [("EC", "P-256", "ES256")]
    outcome = client.call("GET", f"/v1/traces/{trace_id}").json()["outcome"]
    assert outcome["provenance"]["key_id"] == jwks["keys"][0]["kid"]
    # The factory's edits do not touch a.py, which changed: the outcome says so.
    assert outcome["state_check"]["status"] == "state_mismatch"
    assert outcome["state_check"]["first_mismatch"]["path"].startswith("src/pkg/")

    bundle = download_bundle(sdk, trace_id, tmp_path / "bundle")
    trusted = load_public_keys(orjson.dumps(jwks))
    result = verify_bundle(bundle.path, trusted)
    assert result.ok, result.failed
    assert bundle.chunks == 2

    path = bundle.path / chunk_name(1)
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01  # one byte of one chunk
    path.write_bytes(bytes(data))
    failed = verify_bundle(bundle.path, trusted).failed
    assert failed[0].startswith("chunks/000001.json: SHA-256 ")


def test_a_retried_record_keeps_the_stored_manifest_and_signature(
    client: Client, sdk: PrtraceClient, signing_key: str
) -> None:
    trace_id = finalized_trace(client)
    complete(trace_id)
    first = client.call("GET", f"/v1/traces/{trace_id}").json()["outcome"]["provenance"]
    envelope = sdk.download_result(trace_id, "attestation")
    # The outcome write of the first attempt is lost: Step Functions runs Record again.
    set_status(trace_id, "judging")
    event = {
        "tenant": "acme",
        "trace_id": trace_id,
        "status": "complete",
        "assembled": assemble_handler.lambda_handler(
            {"tenant": "acme", "trace_id": trace_id}, LambdaContext()
        ),
        "qa": {"report_key": qa_report_key("acme", trace_id), "skipped": None},
        "judge_result_key": judge_result_key("acme", trace_id),
    }
    record_handler.lambda_handler(event, LambdaContext())
    again = client.call("GET", f"/v1/traces/{trace_id}").json()["outcome"]["provenance"]
    assert again == first
    assert sdk.download_result(trace_id, "attestation") == envelope


def test_chunk_links_are_the_tenants_own(
    client: Client, other_tenant: Client, signing_key: str
) -> None:
    trace_id = finalized_trace(client)
    assert client.call("GET", f"/v1/traces/{trace_id}/chunks/1").status == 200
    missing = client.call("GET", f"/v1/traces/{trace_id}/chunks/7")
    assert missing.status == 404
    assert missing.json()["type"] == "urn:prtrace:problem:chunk-not-found"
    assert other_tenant.call("GET", f"/v1/traces/{trace_id}/chunks/1").status == 404


def test_a_trace_recorded_without_a_signing_key_says_so(
    client: Client, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRTRACE_SIGNING_KEY_ID", raising=False)
    api_not_built_yet()
    for module in (assemble_handler, record_handler):
        module.reset()
    trace_id = finalized_trace(client)
    complete(trace_id)
    for route in ("manifest", "attestation"):
        answer = client.call("GET", f"/v1/traces/{trace_id}/{route}")
        assert answer.status == 409
        assert "without a manifest signing key" in answer.json()["detail"]
    assert client.call("GET", "/v1/keys").json() == {"keys": []}
