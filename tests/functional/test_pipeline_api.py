"""The API side of the pipeline, through the in-process gateway with DynamoDB, S3 and Step
Functions in moto: finalize starts one execution, the status view shows the recorded
outcome, and the result links answer 200 / 404 / 409 as documented."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import orjson
import pytest
import requests

from functions.record import handler as record_handler
from prtrace.storage_keys import artifact_key, document_key, judge_result_key, qa_report_key
from tests.factories import blob_ref, chunk_body, trace_metadata
from tests.functional.conftest import NAMES, Client, api_not_built_yet, make_token
from tests.in_process_gateway import LambdaContext
from tests.judge_factories import qa_report
from tests.pipeline_factories import complete_event, failed_event, judge_result, rejected_event

PROBLEM = "application/problem+json"
DEFINITION = orjson.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}).decode()


@pytest.fixture
def state_machine(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="prtrace-trace-pipeline",
        definition=DEFINITION,
        roleArn="arn:aws:iam::123456789012:role/prtrace-pipeline",
    )["stateMachineArn"]
    monkeypatch.setenv("PRTRACE_STATE_MACHINE_ARN", arn)
    api_not_built_yet()
    record_handler.reset()
    yield arn
    record_handler.reset()


def executions(arn: str) -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions")
    found = []
    for execution in sfn.list_executions(stateMachineArn=arn)["executions"]:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        found.append({"name": execution["name"], "input": orjson.loads(described["input"])})
    return found


def problem_type(response: Any) -> str:
    assert response.headers["content-type"] == PROBLEM, response.body
    body = response.json()
    assert body["status"] == response.status
    assert body["detail"]
    return body["type"].removeprefix("urn:prtrace:problem:")


SNAPSHOT_BASE = b"base snapshot archive"
SNAPSHOT_FINAL = b"final snapshot archive"


def finalized_trace(client: Client, snapshots: bool = True, **headers: str) -> str:
    """A trace of 2 chunks, finalized (with uploaded workspace snapshots unless told not)."""
    trace_id = client.call("POST", "/v1/traces", trace_metadata()).json()["trace_id"]
    for seq in range(2):
        response = client.call(
            "PUT", f"/v1/traces/{trace_id}/chunks/{seq}", raw=chunk_body(seq * 3, 3)
        )
        assert response.status == 201
    body: dict[str, Any] = {"expected_chunks": 2}
    if snapshots:
        s3 = boto3.client("s3")
        for content in (SNAPSHOT_BASE, SNAPSHOT_FINAL):
            key = artifact_key("acme", trace_id, blob_ref(content)["sha256"])
            s3.put_object(Bucket=NAMES.bucket, Key=key, Body=content)
        body["snapshots"] = {"base": blob_ref(SNAPSHOT_BASE), "final": blob_ref(SNAPSHOT_FINAL)}
    response = client.call("POST", f"/v1/traces/{trace_id}/finalize", body, headers=headers)
    assert response.status == 202, response.body
    return trace_id


def set_status(trace_id: str, status: str) -> None:
    """The state machine's own progress write on the trace item."""
    boto3.client("dynamodb").update_item(
        TableName=NAMES.traces_table,
        Key={"pk": {"S": "T#acme"}, "sk": {"S": f"TRACE#{trace_id}"}},
        UpdateExpression="SET #status = :status, updated_at = :now",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={
            ":status": {"S": status},
            ":now": {"S": "2026-11-26T04:00:00.000Z"},
        },
    )


def store(key: str, body: bytes) -> None:
    boto3.client("s3").put_object(Bucket=NAMES.bucket, Key=key, Body=body)


def run_pipeline_to_complete(trace_id: str) -> dict[str, bytes]:
    """What the pipeline's steps leave behind, then the Record step's write."""
    objects = {
        document_key("acme", trace_id): orjson.dumps({"trace_id": trace_id, "events": []}),
        qa_report_key("acme", trace_id): qa_report("resolved", trace_id=trace_id)
        .model_dump_json()
        .encode(),
        judge_result_key("acme", trace_id): judge_result(trace_id).model_dump_json().encode(),
    }
    for key, body in objects.items():
        store(key, body)
    for status in ("assembling", "testing", "judging"):
        set_status(trace_id, status)
    record_handler.lambda_handler(complete_event("acme", trace_id), LambdaContext())
    return objects


# ---- finalize starts the pipeline ------------------------------------------------------


def test_finalize_starts_one_execution_named_after_the_trace(client, state_machine):
    trace_id = finalized_trace(client)
    assert executions(state_machine) == [
        {"name": trace_id, "input": {"tenant": "acme", "trace_id": trace_id}}
    ]


def test_replayed_finalizes_start_nothing_more(client, state_machine):
    trace_id = finalized_trace(client, snapshots=False, **{"Idempotency-Key": "fin-1"})
    path = f"/v1/traces/{trace_id}/finalize"
    replay = client.call("POST", path, {"expected_chunks": 2}, headers={"Idempotency-Key": "fin-1"})
    retry = client.call("POST", path, {"expected_chunks": 2})  # no key: same request again
    assert replay.status == retry.status == 202
    assert [e["name"] for e in executions(state_machine)] == [trace_id]


def test_a_retried_finalize_answers_202_after_the_pipeline_moved_on(client, state_machine):
    trace_id = finalized_trace(client, snapshots=False)
    path = f"/v1/traces/{trace_id}/finalize"
    for status in ("assembling", "judging"):
        set_status(trace_id, status)
        again = client.call("POST", path, {"expected_chunks": 2})
        assert (again.status, again.json()["status"]) == (202, status)
    run_pipeline_to_complete(trace_id)
    again = client.call("POST", path, {"expected_chunks": 2})
    assert (again.status, again.json()["status"]) == (202, "complete")
    different = client.call("POST", path, {"expected_chunks": 3})
    assert different.status == 409
    assert problem_type(different) == "trace-not-open"
    assert len(executions(state_machine)) == 1


def test_a_pipeline_that_could_not_start_is_started_by_the_retry(client, monkeypatch):
    sfn = boto3.client("stepfunctions")
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:prtrace-later"
    monkeypatch.setenv("PRTRACE_STATE_MACHINE_ARN", arn)  # not created yet: start fails
    api_not_built_yet()
    trace_id = client.call("POST", "/v1/traces", trace_metadata()).json()["trace_id"]
    assert client.call("PUT", f"/v1/traces/{trace_id}/chunks/0", raw=chunk_body(0, 3)).status == 201
    path = f"/v1/traces/{trace_id}/finalize"
    first = client.call("POST", path, {"expected_chunks": 1}, headers={"Idempotency-Key": "f-1"})
    assert first.status == 503
    assert problem_type(first) == "pipeline-not-started"
    assert first.headers["retry-after"] == "1"
    assert client.call("GET", f"/v1/traces/{trace_id}").json()["status"] == "finalizing"
    created = sfn.create_state_machine(
        name="prtrace-later",
        definition=DEFINITION,
        roleArn="arn:aws:iam::123456789012:role/prtrace-pipeline",
    )["stateMachineArn"]
    assert created == arn
    # The same request again (the failed one did not burn its Idempotency-Key).
    again = client.call("POST", path, {"expected_chunks": 1}, headers={"Idempotency-Key": "f-1"})
    assert again.status == 202
    assert [e["name"] for e in executions(arn)] == [trace_id]


def test_finalize_without_a_state_machine_starts_nothing(client):
    trace_id = finalized_trace(client)
    assert client.call("GET", f"/v1/traces/{trace_id}").json()["status"] == "finalizing"


# ---- the status view -------------------------------------------------------------------


def test_status_view_of_a_complete_trace(client, state_machine):
    trace_id = finalized_trace(client)
    assert "outcome" not in client.call("GET", f"/v1/traces/{trace_id}").json()
    run_pipeline_to_complete(trace_id)
    view = client.call("GET", f"/v1/traces/{trace_id}").json()
    assert view["status"] == "complete"
    outcome = view["outcome"]
    assert outcome["qa"]["verdict"] == "resolved"
    assert outcome["qa"]["fail_to_pass"] == {
        "count": 1,
        "ids": ["tests/test_ranges.py::test_merge_keeps_last_interval"],
        "truncated": False,
    }
    assert outcome["judge"]["overall"] == 3.75
    assert {s["dimension"] for s in outcome["judge"]["scores"]} >= {"diagnosis"}
    assert all(s["rationale"] for s in outcome["judge"]["scores"])
    assert outcome["chain"]["length"] == 12
    assert outcome["metrics"]["time_to_green_ms"] == 420_000
    assert view["links"] == {
        "document": f"/v1/traces/{trace_id}/document",
        "qa_report": f"/v1/traces/{trace_id}/qa-report",
        "judge_result": f"/v1/traces/{trace_id}/judge-result",
    }
    # A list page carries the headline only: 100 full outcomes would make a huge page.
    listed = client.call("GET", "/v1/traces").json()["items"][0]
    assert listed["outcome"] == {
        "qa": {"verdict": "resolved", "error_reason": None},
        "qa_skipped": None,
        "judge": {
            "status": "ok",
            "overall": 3.75,
            "judge": "offline-heuristic v1",
            "stand_in_overall": None,
        },
    }
    assert listed["links"] == view["links"]


def test_status_view_of_rejected_and_failed_traces(client, state_machine):
    rejected = finalized_trace(client)
    set_status(rejected, "assembling")
    record_handler.lambda_handler(rejected_event("acme", rejected), LambdaContext())
    view = client.call("GET", f"/v1/traces/{rejected}").json()
    assert view["status"] == "rejected"
    assert view["outcome"]["reason"]["code"] == "chunk_mac_invalid"
    assert "links" not in view

    failed = finalized_trace(client)
    set_status(failed, "judging")
    event = failed_event("acme", failed, cause='{"errorMessage": "model exploded"}')
    record_handler.lambda_handler(event, LambdaContext())
    view = client.call("GET", f"/v1/traces/{failed}").json()
    assert view["status"] == "failed"
    assert view["outcome"]["stage"] == "judge"
    assert view["outcome"]["error"] == "Lambda.ServiceException"
    assert "model exploded" in view["outcome"]["cause"]
    listed = {t["trace_id"]: t for t in client.call("GET", "/v1/traces").json()["items"]}
    assert listed[failed]["outcome"] == {"stage": "judge", "error": "Lambda.ServiceException"}
    assert (
        listed[rejected]["outcome"]
        == client.call("GET", f"/v1/traces/{rejected}").json()["outcome"]
    )


# ---- result links ----------------------------------------------------------------------

ROUTES = {"document": "document", "qa_report": "qa-report", "judge_result": "judge-result"}


@pytest.mark.parametrize("result", list(ROUTES))
def test_links_of_a_complete_trace_download_the_stored_objects(client, state_machine, result):
    trace_id = finalized_trace(client)
    objects = run_pipeline_to_complete(trace_id)
    response = client.call("GET", f"/v1/traces/{trace_id}/{ROUTES[result]}")
    assert response.status == 200, response.body
    body = response.json()
    assert body["expires_in"] == 300
    url = urlsplit(body["url"])
    key = {"document": document_key, "qa_report": qa_report_key}.get(result, judge_result_key)(
        "acme", trace_id
    )
    assert url.path.endswith(key)
    assert parse_qs(url.query)["X-Amz-Expires"] == ["300"]
    downloaded = requests.get(body["url"], timeout=10)  # moto serves presigned URLs in-process
    assert downloaded.status_code == 200
    assert downloaded.content == objects[key]


@pytest.mark.parametrize("route", list(ROUTES.values()))
def test_links_of_another_tenants_or_an_unknown_trace_are_404(
    client, other_tenant, state_machine, route
):
    trace_id = finalized_trace(client)
    run_pipeline_to_complete(trace_id)
    for caller, trace in ((other_tenant, trace_id), (client, "tr_01JZZZZZZZZZZZZZZZZZZZZZZZ")):
        response = caller.call("GET", f"/v1/traces/{trace}/{route}")
        assert response.status == 404
        assert problem_type(response) == "trace-not-found"


def test_links_need_the_read_scope(gateway, client, state_machine):
    trace_id = finalized_trace(client)
    ingest_only = Client(gateway, make_token("acme", ["ingest"]))
    response = ingest_only.call("GET", f"/v1/traces/{trace_id}/document")
    assert response.status == 403
    assert problem_type(response) == "insufficient-scope"


def not_available(client: Client, trace_id: str, route: str) -> dict[str, Any]:
    response = client.call("GET", f"/v1/traces/{trace_id}/{route}")
    assert response.status == 409, response.body
    assert problem_type(response) == "result-not-available"
    return response.json()


def test_nothing_is_available_while_open_or_before_it_is_produced(client, state_machine):
    trace_id = client.call("POST", "/v1/traces", trace_metadata()).json()["trace_id"]
    body = not_available(client, trace_id, "document")
    assert (body["trace_status"], body["result"]) == ("open", "document")
    assert "is open" in body["detail"]

    trace_id = finalized_trace(client)
    set_status(trace_id, "assembling")
    for route in ROUTES.values():
        body = not_available(client, trace_id, route)
        assert body["trace_status"] == "assembling"
        assert "not produced yet" in body["detail"]
    # Once the document is stored its link works, whatever the status.
    store(document_key("acme", trace_id), b"{}")
    assert client.call("GET", f"/v1/traces/{trace_id}/document").status == 200


def test_a_rejected_trace_has_no_document(client, state_machine):
    trace_id = finalized_trace(client)
    record_handler.lambda_handler(rejected_event("acme", trace_id), LambdaContext())
    body = not_available(client, trace_id, "document")
    assert "rejected (chunk_mac_invalid:" in body["detail"]


def test_no_snapshots_means_no_qa_report(client, state_machine):
    trace_id = finalized_trace(client, snapshots=False)
    for key, body in (
        (document_key("acme", trace_id), b"{}"),
        (judge_result_key("acme", trace_id), judge_result(trace_id).model_dump_json().encode()),
    ):
        store(key, body)
    event = complete_event("acme", trace_id, skipped="no_snapshots", has_snapshots=False)
    record_handler.lambda_handler(event, LambdaContext())
    view = client.call("GET", f"/v1/traces/{trace_id}").json()
    assert (view["outcome"]["qa"], view["outcome"]["qa_skipped"]) == (None, "no_snapshots")
    assert view["links"]["qa_report"] is None
    body = not_available(client, trace_id, "qa-report")
    assert "no workspace snapshots" in body["detail"]
    assert client.call("GET", f"/v1/traces/{trace_id}/judge-result").status == 200


def test_a_failed_trace_links_what_was_produced_before_the_failure(client, state_machine):
    trace_id = finalized_trace(client)
    store(document_key("acme", trace_id), b"{}")
    record_handler.lambda_handler(failed_event("acme", trace_id), LambdaContext())
    assert client.call("GET", f"/v1/traces/{trace_id}/document").status == 200
    body = not_available(client, trace_id, "judge-result")
    assert "failed in its judge step" in body["detail"]
