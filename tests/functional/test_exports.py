"""Dataset exports through the API and the export job's code, in moto (DynamoDB, S3, KMS,
Step Functions): POST /v1/exports records the request and starts one execution named by
the export id; the job (prtrace.dataset.job, wired as the task wires it) writes the files,
the manifest last and its signature; GET /v1/exports/{id} reports running, complete with
links, or failed with why; another tenant never sees it."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import boto3
import orjson
import pyarrow.parquet as pq
import pytest
import requests

from functions.export_job import main as export_task
from prtrace.adapters.s3 import S3BlobStore
from prtrace.dataset.files import ExportError
from prtrace.dataset.job import ExportJobError
from prtrace.dataset.rows import EXPORT_VERSION
from prtrace.provenance.manifest import (
    EXPORT_PREDICATE_TYPE,
    load_public_keys,
    signed_manifest_digest,
    verify_envelope,
)
from prtrace.storage_keys import (
    document_key,
    export_request_key,
    judge_result_key,
    qa_report_key,
)
from prtrace_client import PrtraceClient
from prtrace_client.export import save_server_export
from prtrace_client.provenance import verify_export
from tests.functional.conftest import NAMES, Client, make_token
from tests.functional.test_provenance_api import complete, finalized_trace, signing_key
from tests.judge_factories import flagged_qa_report

__all__ = ["signing_key"]  # a fixture used here


def run_job(
    export_id: str, monkeypatch: pytest.MonkeyPatch, tenant: str = "acme", exits: int = 0
) -> None:
    """One attempt of the export task (its container's entry point, with the environment
    the stack and the state machine give it), ending with the exit code `exits`."""
    monkeypatch.setenv("PRTRACE_EXPORT_TENANT", tenant)
    monkeypatch.setenv("PRTRACE_EXPORT_ID", export_id)
    assert export_task.main() == exits


def fetch(url: str) -> bytes:
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.content


def execution_of(export_id: str) -> str:
    (machine,) = boto3.client("stepfunctions").list_state_machines()["stateMachines"]
    return str(machine["stateMachineArn"]).replace(":stateMachine:", ":execution:") + (
        f":{export_id}"
    )


def fail_writes_once(monkeypatch: pytest.MonkeyPatch, suffix: str) -> None:
    """The next write of an export object whose key ends with `suffix` fails, as a lost
    connection would: the attempt ends there, with what it wrote before kept."""
    real = S3BlobStore.put_if_absent
    failed: list[str] = []

    def flaky(self: S3BlobStore, key: str, body: bytes, sha256_hex: str, media: str) -> bool:
        if "/exports/" in key and key.endswith(suffix) and not failed:
            failed.append(key)
            raise ConnectionError(f"connection reset while writing {key}")
        return real(self, key, body, sha256_hex, media)

    monkeypatch.setattr(S3BlobStore, "put_if_absent", flaky)


def stored_files(export_id: str) -> dict[str, bytes]:
    s3 = boto3.client("s3")
    prefix = f"tenants/acme/exports/{export_id}/"
    listed = s3.list_objects_v2(Bucket=NAMES.bucket, Prefix=prefix).get("Contents", [])
    return {
        o["Key"][len(prefix) :]: s3.get_object(Bucket=NAMES.bucket, Key=o["Key"])["Body"].read()
        for o in listed
    }


def start(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    """Start an export; unless the test says otherwise it takes unusable instances too (the
    traces here have no snapshots, so no patch: the default export would take none)."""
    body = {"include_unusable": True} | body
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
    names = {"instances.jsonl", "events.jsonl", "events.parquet", "traces.parquet", "README.md"}
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
    run_job(export_id, monkeypatch, exits=1)
    # While the execution runs, the state machine may start the task again: not failed yet.
    assert client.call("GET", f"/v1/exports/{export_id}").json()["status"] == "running"
    boto3.client("stepfunctions").stop_execution(executionArn=execution_of(export_id))
    body = client.call("GET", f"/v1/exports/{export_id}").json()
    assert body["status"] == "failed"
    assert body["error"]["error"] == "NotFoundException"
    assert body["request"]["formats"] == ["events"]
    assert "manifest" not in body


def test_a_task_started_again_after_a_partial_attempt_completes_the_export(
    client: Client,
    sdk: PrtraceClient,
    signing_key: str,
    export_machine: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    complete(finalized_trace(client))
    export_id = start(client, {})["export_id"]  # every format
    fail_writes_once(monkeypatch, "/manifest.json")  # the files and signature are stored
    run_job(export_id, monkeypatch, exits=1)
    first = stored_files(export_id)
    assert "error.json" in first
    assert "manifest.json" not in first
    assert client.call("GET", f"/v1/exports/{export_id}").json()["status"] == "running"

    run_job(export_id, monkeypatch)  # the state machine's retry: keeps the same bytes

    view = sdk.get_export(export_id)
    assert view["status"] == "complete"
    second = stored_files(export_id)
    assert {k: v for k, v in second.items() if k != "manifest.json"} == first
    manifest = save_server_export(sdk, view, tmp_path / "export")  # signature and files verify
    assert manifest["trace_count"] == 1
    run_job(export_id, monkeypatch)  # once complete, another attempt has nothing to do
    assert stored_files(export_id) == second


def test_a_retry_that_would_store_other_bytes_fails_naming_the_file_and_keeps_them(
    client: Client,
    export_machine: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    complete(finalized_trace(client))
    export_id = start(client, {"formats": ["events"]})["export_id"]
    fail_writes_once(monkeypatch, "/manifest.json")
    run_job(export_id, monkeypatch, exits=1)
    first = stored_files(export_id)
    complete(finalized_trace(client))  # the request now selects another trace too

    caplog.clear()
    with caplog.at_level(logging.ERROR, "prtrace.dataset.job"):
        run_job(export_id, monkeypatch, exits=1)

    # The card is uploaded first (files in name order); it counts the traces, so it differs.
    key = f"tenants/acme/exports/{export_id}/files/README.md"
    (failure,) = [r for r in caplog.records if r.exc_info]
    assert isinstance(failure.exc_info[1], ExportJobError)  # type: ignore[index]
    message = str(failure.exc_info[1])  # type: ignore[index]
    assert message.startswith(f"{key} already holds a different export file")
    assert "ask for the export again" in message
    assert stored_files(export_id) == first  # nothing overwritten, no manifest
    boto3.client("stepfunctions").stop_execution(executionArn=execution_of(export_id))
    body = client.call("GET", f"/v1/exports/{export_id}").json()
    assert body["status"] == "failed"
    assert body["error"]["error"] == "ConnectionError"  # the first attempt's failure


def test_a_signed_export_is_checked_against_the_export_asked_for(
    client: Client,
    sdk: PrtraceClient,
    signing_key: str,
    export_machine: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """--on-server's download: a deployment that publishes keys signs every export, so a
    signature removed is refused; a signature of another export is named as such."""
    complete(finalized_trace(client))
    export_id = start(client, {"formats": ["swebench"]})["export_id"]
    run_job(export_id, monkeypatch)
    out = tmp_path / "export"
    save_server_export(sdk, sdk.get_export(export_id), out)
    keys = load_public_keys(orjson.dumps(sdk.public_keys()))
    other = "ex_01ARZ3NDEKTSV4RRFFQ69G5FAV"
    mixed = verify_export(out, keys, export_id=other)
    assert mixed.failed == [
        f"manifest.dsse.json: signed for export {export_id} of tenant acme, not export "
        f"{other}: these files belong to another export"
    ]
    assert verify_export(out, keys, export_id=export_id).ok

    boto3.client("s3").delete_object(
        Bucket=NAMES.bucket, Key=f"tenants/acme/exports/{export_id}/manifest.dsse.json"
    )
    stripped = sdk.get_export(export_id)
    assert stripped["links"]["signature"] is None
    with pytest.raises(ExportError, match=r"manifest\.dsse\.json: missing; the export's manifest"):
        save_server_export(sdk, stripped, tmp_path / "stripped")


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


def test_a_trace_without_qa_or_judge_results_is_exported_without_them(
    client: Client, export_machine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QA may be skipped for a trace (no snapshots) and its report is then absent: the
    trace is exported with no verdict, as `prtrace export` does through the API."""
    trace_id = finalized_trace(client)
    complete(trace_id)
    s3 = boto3.client("s3")
    for key in (qa_report_key("acme", trace_id), judge_result_key("acme", trace_id)):
        s3.delete_object(Bucket=NAMES.bucket, Key=key)
    export_id = start(client, {"formats": ["events"]})["export_id"]
    run_job(export_id, monkeypatch)
    manifest = client.call("GET", f"/v1/exports/{export_id}").json()["manifest"]
    assert manifest["trace_ids"] == [trace_id]
    assert manifest["skipped"] == []


def test_the_default_export_leaves_an_unusable_instance_out_and_says_why(
    client: Client, export_machine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trace here was recorded without saying whether its tree was clean (and QA found
    no target tests): not an instance to train or evaluate on, so the default leaves it out."""
    trace_id = finalized_trace(client)
    complete(trace_id)
    view = start(client, {"formats": ["swebench"], "include_unusable": False})
    assert view["request"]["include_unusable"] is False
    run_job(view["export_id"], monkeypatch)
    manifest = client.call("GET", f"/v1/exports/{view['export_id']}").json()["manifest"]
    assert (manifest["trace_count"], manifest["unusable_left_out_count"]) == (0, 1)
    (left_out,) = manifest["unusable_left_out"]
    assert left_out["trace_id"] == trace_id
    assert "base_unrecorded" in left_out["reasons"]


def test_a_trace_with_tamper_flags_is_left_out_unless_the_request_includes_it(
    client: Client, export_machine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace_id = finalized_trace(client)
    complete(trace_id)
    report = flagged_qa_report(trace_id=trace_id).model_dump_json().encode()
    boto3.client("s3").put_object(
        Bucket=NAMES.bucket, Key=qa_report_key("acme", trace_id), Body=report
    )
    export_id = start(client, {"formats": ["swebench"]})["export_id"]
    run_job(export_id, monkeypatch)
    manifest = client.call("GET", f"/v1/exports/{export_id}").json()["manifest"]
    assert manifest["trace_count"] == 0
    assert manifest["flagged_left_out"] == [
        {"trace_id": trace_id, "flags": ["target_test_modified"]}
    ]
    assert manifest["flagged_left_out_count"] == 1
    assert manifest["filter"]["include_flagged"] is False

    view = start(client, {"formats": ["swebench"], "include_flagged": True})
    assert view["request"]["include_flagged"] is True
    run_job(view["export_id"], monkeypatch)
    done = client.call("GET", f"/v1/exports/{view['export_id']}").json()
    assert done["manifest"]["trace_ids"] == [trace_id]
    assert (done["manifest"]["flagged_left_out"], done["manifest"]["flagged_count"]) == ([], 1)
    instances = fetch(done["links"]["files"]["instances.jsonl"]).splitlines()
    (instance,) = [orjson.loads(line) for line in instances]
    assert instance["qa_tamper_flags"] == ["target_test_modified"]
    assert instance["qa_resolution"] == "partial"
    assert instance["test_patch_source"] == "candidate"


def test_a_trace_missing_an_artifact_is_skipped_naming_it(
    client: Client, export_machine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace_id = finalized_trace(client)
    complete(trace_id)
    s3 = boto3.client("s3")
    prefix = f"tenants/acme/traces/{trace_id}/artifacts/"
    first = s3.list_objects_v2(Bucket=NAMES.bucket, Prefix=prefix)["Contents"][0]["Key"]
    s3.delete_object(Bucket=NAMES.bucket, Key=first)
    export_id = start(client, {"formats": ["events"]})["export_id"]
    run_job(export_id, monkeypatch)
    manifest = client.call("GET", f"/v1/exports/{export_id}").json()["manifest"]
    assert manifest["trace_count"] == 0
    (skipped,) = manifest["skipped"]
    assert skipped["trace_id"] == trace_id
    assert skipped["reason"] == (
        f"trace {trace_id} has no artifact with SHA-256 {first.rsplit('/', 1)[1]}"
    )


def test_an_export_whose_request_is_gone_fails_saying_so(
    client: Client, export_machine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    export_id = start(client, {})["export_id"]
    boto3.client("s3").delete_object(Bucket=NAMES.bucket, Key=export_request_key("acme", export_id))
    run_job(export_id, monkeypatch, exits=1)
    error = orjson.loads(stored_files(export_id)["error.json"])
    assert error == {
        "error": "ExportJobError",
        "detail": f"export {export_id} of tenant acme has no request.json",
    }


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
