"""Dataset exports through the API and the export job's code, in moto (DynamoDB, S3, KMS,
Step Functions): POST /v1/exports records the request and starts one execution named by
the export id; the job (prtrace.export_job, wired as the task wires it) writes the files,
the manifest last and its signature; GET /v1/exports/{id} reports running, complete with
links, or failed with why; another tenant never sees it."""

from __future__ import annotations

import io
from typing import Any

import boto3
import orjson
import pyarrow.parquet as pq
import pytest
import requests

from prtrace.adapters.wiring import run_export_job
from prtrace.dataset import EXPORT_VERSION
from prtrace.provenance import (
    EXPORT_PREDICATE_TYPE,
    load_public_keys,
    signed_manifest_digest,
    verify_envelope,
)
from prtrace.settings import ExportJobSettings
from prtrace.storage_keys import document_key, export_request_key
from tests.functional.conftest import NAMES, Client, make_token
from tests.functional.test_provenance_api import complete, finalized_trace, signing_key

__all__ = ["signing_key"]  # a fixture used here


def run_job(export_id: str, monkeypatch: pytest.MonkeyPatch, tenant: str = "acme") -> None:
    """What the export task does for one export, with the environment the stack gives it."""
    monkeypatch.setenv("PRTRACE_EXPORT_TENANT", tenant)
    monkeypatch.setenv("PRTRACE_EXPORT_ID", export_id)
    run_export_job(ExportJobSettings.from_env())


def fetch(url: str) -> bytes:
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.content


def start(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.call("POST", "/v1/exports", body)
    assert response.status == 202, response.body
    view: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/v1/exports/{view['export_id']}"
    return view


def test_an_export_job_writes_the_files_the_manifest_and_its_signature(
    client: Client,
    gateway: Any,
    signing_key: str,
    export_machine: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trace_id = finalized_trace(client)
    complete(trace_id)
    view = start(client, {"formats": ["swebench", "events", "parquet"]})
    export_id = view["export_id"]
    assert view["status"] == "running"
    assert view["request"]["statuses"] == ["complete"]
    execution = export_machine.replace(":stateMachine:", ":execution:") + f":{export_id}"
    started = boto3.client("stepfunctions").describe_execution(executionArn=execution)
    assert orjson.loads(started["input"]) == {"tenant": "acme", "export_id": export_id}
    assert client.call("GET", f"/v1/exports/{export_id}").json()["status"] == "running"

    run_job(export_id, monkeypatch)

    done = client.call("GET", f"/v1/exports/{export_id}")
    assert done.status == 200, done.body
    body = done.json()
    assert body["status"] == "complete"
    manifest = body["manifest"]
    assert manifest["version"] == EXPORT_VERSION
    assert (manifest["trace_count"], manifest["trace_ids"]) == (1, [trace_id])
    names = {"instances.jsonl", "events.jsonl", "events.parquet", "traces.parquet"}
    assert set(body["links"]["files"]) == set(manifest["files"]) == names
    files = {name: fetch(url) for name, url in body["links"]["files"].items()}
    for name, data in files.items():
        entry = manifest["files"][name]
        assert (len(data), entry["sha256"]) == (entry["bytes"], _sha256(data)), name
    instance = orjson.loads(files["instances.jsonl"].splitlines()[0])
    assert instance["instance_id"].endswith(trace_id) or instance["trace_id"] == trace_id
    events = pq.read_table(io.BytesIO(files["events.parquet"]))
    assert events.num_rows == manifest["event_count"] == 6

    # The manifest is the one signed, by a key GET /v1/keys publishes.
    manifest_bytes = fetch(body["links"]["manifest"])
    assert orjson.loads(manifest_bytes) == manifest
    keys = load_public_keys(orjson.dumps(Client(gateway, None).call("GET", "/v1/keys").json()))
    statement = verify_envelope(fetch(body["links"]["signature"]), keys, EXPORT_PREDICATE_TYPE)
    assert signed_manifest_digest(statement) == _sha256(manifest_bytes)
    assert statement["predicate"] == {"export_id": export_id, "tenant": "acme"}


def test_a_failed_job_says_why_and_keeps_what_was_asked(
    client: Client, export_machine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace_id = finalized_trace(client)
    complete(trace_id)
    export_id = start(client, {"formats": ["events"]})["export_id"]
    # The signing key the task is configured with does not exist.
    monkeypatch.setenv(
        "PRTRACE_SIGNING_KEY_ID", "arn:aws:kms:us-east-1:123456789012:key/0000-missing"
    )
    with pytest.raises(Exception, match=r"NotFound|not found|does not exist"):
        run_job(export_id, monkeypatch)
    body = client.call("GET", f"/v1/exports/{export_id}").json()
    assert body["status"] == "failed"
    assert body["error"]["error"] == "NotFoundException"
    assert body["request"]["formats"] == ["events"]
    assert "manifest" not in body


def test_an_execution_that_ended_without_a_manifest_is_failed(
    client: Client, export_machine: str
) -> None:
    export_id = start(client, {})["export_id"]
    execution = export_machine.replace(":stateMachine:", ":execution:") + f":{export_id}"
    boto3.client("stepfunctions").stop_execution(executionArn=execution)
    body = client.call("GET", f"/v1/exports/{export_id}").json()
    assert body["status"] == "failed"
    assert body["error"]["error"] == "JobAborted"


def test_an_export_of_no_matching_trace_is_complete_and_empty(
    client: Client, export_machine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    export_id = start(client, {"verdicts": ["resolved"], "formats": ["swebench"]})["export_id"]
    run_job(export_id, monkeypatch)
    body = client.call("GET", f"/v1/exports/{export_id}").json()
    assert body["status"] == "complete"
    assert body["manifest"]["trace_count"] == 0
    assert body["manifest"]["files"]["instances.jsonl"]["bytes"] == 0
    assert body["links"]["signature"] is None  # no signing key configured


def test_a_trace_whose_document_is_gone_is_listed_as_skipped(
    client: Client, export_machine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace_id = finalized_trace(client)
    complete(trace_id)
    boto3.client("s3").delete_object(Bucket=NAMES.bucket, Key=document_key("acme", trace_id))
    export_id = start(client, {"formats": ["events"]})["export_id"]
    run_job(export_id, monkeypatch)
    manifest = client.call("GET", f"/v1/exports/{export_id}").json()["manifest"]
    assert manifest["trace_count"] == 0
    assert manifest["skipped"] == [
        {"trace_id": trace_id, "reason": f"the trace document of trace {trace_id} is not stored"}
    ]


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"formats": ["csv"]}, "/formats/0"),
        ({"formats": []}, "/formats"),
        ({"statuses": ["done"]}, "/statuses/0"),
        ({"verdicts": ["maybe"]}, "/verdicts/0"),
        ({"min_overall": 6}, "/min_overall"),
        ({"min_scores": {"charm": 3}}, "/min_scores/charm"),
        ({"min_scores": {"root_cause": 9}}, "/min_scores/root_cause"),
        ({"since": "yesterday"}, "/since"),
        ({"surprise": True}, "/surprise"),
    ],
)
def test_a_bad_request_points_at_the_field_and_starts_nothing(
    client: Client, export_machine: str, body: dict[str, Any], pointer: str
) -> None:
    response = client.call("POST", "/v1/exports", body)
    assert response.status == 422, response.body
    assert pointer in {e["pointer"] for e in response.json()["errors"]}
    executions = boto3.client("stepfunctions").list_executions(stateMachineArn=export_machine)
    assert executions["executions"] == []


def test_an_export_is_its_tenants_own(
    client: Client, other_tenant: Client, export_machine: str, gateway: Any
) -> None:
    export_id = start(client, {})["export_id"]
    for path in (f"/v1/exports/{export_id}", "/v1/exports/ex_01ARZ3NDEKTSV4RRFFQ69G5FAV"):
        response = other_tenant.call("GET", path)
        assert response.status == 404, response.body
        assert response.json()["type"] == "urn:prtrace:problem:export-not-found"
    for bad in ("..%2F..%2Fglobex", "ex_lower"):
        assert client.call("GET", f"/v1/exports/{bad}").status == 404
    ingest_only = Client(gateway, make_token("acme", ["ingest"]))
    assert ingest_only.call("POST", "/v1/exports", {}).status == 403
    assert ingest_only.call("GET", f"/v1/exports/{export_id}").status == 403


@pytest.mark.aws_calls_unrecorded  # a deployment without the export job
def test_without_an_export_job_the_request_is_refused_and_kept(client: Client) -> None:
    response = client.call("POST", "/v1/exports", {})
    assert response.status == 503, response.body
    assert response.json()["type"] == "urn:prtrace:problem:export-not-started"
    assert "ask for the export again" in response.json()["detail"]
    kept = boto3.client("s3").list_objects_v2(Bucket=NAMES.bucket, Prefix="tenants/acme/exports/")
    keys = [o["Key"] for o in kept.get("Contents", [])]
    assert len(keys) == 1
    assert keys[0] == export_request_key("acme", keys[0].split("/")[3])


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
