"""The Assemble Lambda against moto: the example trace submitted through the API with the
client SDK (`submit_directory`, as `prtrace submit` and the demo do) assembles into a
verifiable document; an edited chunk body or a missing artifact is rejected naming it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest

from functions.assemble import handler
from prtrace.adapters.dynamodb import DynamoTraceStore
from prtrace.adapters.keys import parse_key_ring
from prtrace.assemble.document import TraceDocument
from prtrace.assemble.metrics import compute_metrics
from prtrace.integrity import verify_chain
from prtrace.storage_keys import document_key
from prtrace_client import PrtraceClient
from prtrace_client.submit import submit_directory
from tests.functional.conftest import NAMES
from tests.in_process_gateway import LambdaContext

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample-trace-chunks"
TENANT = "acme"


@pytest.fixture
def assemble(aws: None) -> Any:
    handler.reset()
    yield lambda trace_id: handler.lambda_handler(
        {"tenant": TENANT, "trace_id": trace_id, "ignored": True}, LambdaContext()
    )
    handler.reset()


def submit_example(sdk: PrtraceClient) -> str:
    return submit_directory(sdk, EXAMPLE).trace_id


def test_example_trace_assembles_into_a_verifiable_document(sdk, assemble):
    trace_id = submit_example(sdk)
    output = assemble(trace_id)

    assert output["outcome"] == "assembled"
    assert output["document_key"] == document_key(TENANT, trace_id)
    assert output["qa_report_key"] == f"tenants/{TENANT}/traces/{trace_id}/qa/report.json"
    assert output["judge_result_key"] == f"tenants/{TENANT}/traces/{trace_id}/judge/result.json"
    assert output["has_snapshots"] is True
    summary = output["summary"]
    assert (summary["event_count"], summary["chunk_count"]) == (11, 3)
    assert len(orjson.dumps(output)) < 32 * 1024

    raw = boto3.client("s3").get_object(Bucket=NAMES.bucket, Key=output["document_key"])
    document = TraceDocument.model_validate_json(raw["Body"].read())
    assert document.trace_id == trace_id
    assert [e.seq for e in document.events] == list(range(11))
    assert document.snapshots is not None
    finalize = orjson.loads((EXAMPLE / "finalize.json").read_bytes())
    assert document.snapshots.final.sha256 == finalize["snapshots"]["final"]["sha256"]
    assert document.metrics == summary["metrics"] == compute_metrics(document.events)
    assert summary["metrics"]["test_runs"] == 2
    assert summary["metrics"]["events_by_type"]["rationale_note"] == 5

    secret = boto3.client("secretsmanager").get_secret_value(SecretId=NAMES.key_secret_name)
    ring = parse_key_ring(secret["SecretString"])
    canonical = [
        orjson.dumps(e.model_dump(mode="json", exclude_none=True), option=orjson.OPT_SORT_KEYS)
        for e in document.events
    ]
    verdict = verify_chain(
        ring.get(summary["chain"]["key_id"]),
        trace_id,
        canonical,
        expected_head=summary["chain"]["head"],
    )
    assert verdict.ok, verdict.reason
    assert document.chain.model_dump() == summary["chain"]

    assert assemble(trace_id) == output  # a retried step finds its own document: success


def test_chunk_edited_in_s3_is_rejected_naming_the_chunk(sdk, assemble):
    trace_id = submit_example(sdk)
    store = DynamoTraceStore(boto3.client("dynamodb"), NAMES.traces_table)
    chunk = store.get_chunk(TENANT, trace_id, 1)
    assert chunk is not None
    s3 = boto3.client("s3")
    body = s3.get_object(Bucket=NAMES.bucket, Key=chunk.body_key)["Body"].read()
    s3.put_object(Bucket=NAMES.bucket, Key=chunk.body_key, Body=body.replace(b"merge", b"MERGE"))

    output = assemble(trace_id)
    assert output["outcome"] == "rejected"
    assert output["reason"]["code"] == "chunk_body_mismatch"
    assert output["reason"]["chunk_seq"] == 1
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=NAMES.bucket, Key=document_key(TENANT, trace_id))


def test_missing_chunk_body_is_rejected_naming_the_chunk(sdk, assemble):
    trace_id = submit_example(sdk)
    chunk = DynamoTraceStore(boto3.client("dynamodb"), NAMES.traces_table).get_chunk(
        TENANT, trace_id, 2
    )
    assert chunk is not None
    boto3.client("s3").delete_object(Bucket=NAMES.bucket, Key=chunk.body_key)

    output = assemble(trace_id)
    assert output["outcome"] == "rejected"
    assert (output["reason"]["code"], output["reason"]["chunk_seq"]) == ("chunk_body_missing", 2)


def test_missing_artifact_is_rejected_naming_it(sdk, assemble):
    trace_id = submit_example(sdk)
    log = (EXAMPLE / "artifacts" / "pytest-before.txt").read_bytes()
    digest = hashlib.sha256(log).hexdigest()
    boto3.client("s3").delete_object(
        Bucket=NAMES.bucket, Key=f"tenants/{TENANT}/traces/{trace_id}/artifacts/sha256/{digest}"
    )

    output = assemble(trace_id)
    assert output["outcome"] == "rejected"
    reason = output["reason"]
    assert reason["code"] == "artifact_missing"
    assert reason["artifact_sha256"] == digest
    assert (reason["event_seq"], reason["event_id"], reason["chunk_seq"]) == (1, "evt-0001", 0)


def test_a_trace_that_is_still_open_is_rejected(client, assemble):
    metadata = orjson.loads((EXAMPLE / "trace.json").read_bytes())
    created = client.call("POST", "/v1/traces", metadata, headers={"Idempotency-Key": "open-1"})
    assert created.status == 201
    output = assemble(orjson.loads(created.body)["trace_id"])
    assert output["outcome"] == "rejected"
    assert output["reason"]["code"] == "trace_not_finalized"
