"""The whole ingestion API over real HTTP: the local gateway, the real authorizer and API
Lambdas in their workers, DynamoDB, S3 and Secrets Manager of the deployed stack."""

from __future__ import annotations

import hashlib
import re

import httpx
import orjson

from examples.submit_example import EXAMPLE, submit_over_http
from local_cloud.cloud import LocalCloudInfo
from prtrace.storage_keys import artifact_key
from tests.factories import blob_ref, chunk_body, trace_metadata
from tests.local_cloud import Api, aws, make_token, new_tenant, problem_type

TRACE_ID = re.compile(r"tr_[0-9A-HJKMNP-TV-Z]{26}")


def test_health_and_readiness_need_no_token(cloud: LocalCloudInfo) -> None:
    anonymous = Api(cloud.endpoint, None)
    health = anonymous.call("GET", "/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = anonymous.call("GET", "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"table": "ok", "bucket": "ok"}}
    anonymous.close()


# After finalize the pipeline moves the trace on (tests/e2e/test_pipeline.py follows it).
FINALIZED = {"finalizing", "assembling", "testing", "judging", "complete", "rejected", "failed"}


def test_example_submission_end_to_end(cloud: LocalCloudInfo) -> None:
    tenant = new_tenant()
    token = make_token(cloud, tenant, ["ingest", "read"])
    submission = submit_over_http(cloud.endpoint, token, EXAMPLE)

    assert TRACE_ID.fullmatch(submission.trace_id)
    assert [r["chunk_seq"] for r in submission.receipts] == [0, 1, 2]
    assert sum(r["event_count"] for r in submission.receipts) == 11
    assert submission.finalized["status"] == "finalizing"

    api = Api(cloud.endpoint, token)
    status = api.trace(submission.trace_id)
    assert status["status"] in FINALIZED  # the pipeline has started on it
    assert (status["chunks_received"], status["events_received"]) == (3, 11)
    expected_snapshots = orjson.loads((EXAMPLE / "finalize.json").read_bytes())["snapshots"]
    assert status["finalize"]["snapshots"] == expected_snapshots
    assert status["finalize"]["expected_chunks"] == 3
    assert status["finalize"]["event_count"] == 11
    assert status["metadata"] == orjson.loads((EXAMPLE / "trace.json").read_bytes())

    listed = api.call("GET", "/v1/traces").json()
    assert [t["trace_id"] for t in listed["items"]] == [submission.trace_id]
    assert listed["items"][0]["status"] in FINALIZED

    # Every artifact (the workspace snapshots among them) really is in the deployed bucket.
    s3 = aws(cloud, "s3")
    bucket = cloud.stack.outputs["DataBucketName"]
    for path in sorted((EXAMPLE / "artifacts").iterdir()):
        content = path.read_bytes()
        key = artifact_key(tenant, submission.trace_id, hashlib.sha256(content).hexdigest())
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == content, path.name
    api.close()


def test_rerunning_a_finished_submission_gets_the_same_trace(cloud: LocalCloudInfo) -> None:
    """submit.py promises a rerun after a failure finishes the same submission; the last
    possible failure is losing the finalize answer, after which the trace is finalizing."""
    token = make_token(cloud, new_tenant(), ["ingest", "read"])
    first = submit_over_http(cloud.endpoint, token, EXAMPLE)
    again = submit_over_http(cloud.endpoint, token, EXAMPLE)
    assert again.trace_id == first.trace_id
    assert again.finalized == first.finalized


def test_trace_lifecycle_step_by_step(tenant_api: Api, cloud: LocalCloudInfo) -> None:
    created = tenant_api.call("POST", "/v1/traces", trace_metadata())
    assert created.status_code == 201
    trace_id = created.json()["trace_id"]
    assert created.json()["status"] == "open"
    assert created.headers["location"] == f"/v1/traces/{trace_id}"

    # An artifact: presigned PUT with exactly the URL and headers the API returned.
    content = b"pytest output: 1 failed, 41 passed\n"
    ref = blob_ref(content)
    request = {"sha256": ref["sha256"], "size": ref["size"], "media_type": "text/plain"}
    answer = tenant_api.call("POST", f"/v1/traces/{trace_id}/artifacts", request)
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "upload_required"
    assert answer.json()["blob_ref"] == ref
    upload = answer.json()["upload"]
    assert upload["method"] == "PUT"
    assert upload["url"].startswith(cloud.aws_endpoint)
    put = httpx.put(upload["url"], content=content, headers=upload["headers"], timeout=30)
    assert put.status_code == 200, put.text
    again = tenant_api.call("POST", f"/v1/traces/{trace_id}/artifacts", request)
    assert (again.status_code, again.json()["status"], again.json()["upload"]) == (
        201,
        "present",
        None,
    )

    receipts = []
    for seq, (start, count) in enumerate([(0, 4), (4, 5), (9, 2)]):
        response = tenant_api.put_chunk(trace_id, seq, chunk_body(start, count))
        assert response.status_code == 201, response.text
        receipts.append(response.json())
    assert [r["event_count"] for r in receipts] == [4, 5, 2]
    assert receipts[1]["first_event_seq"] == 4
    open_status = tenant_api.trace(trace_id)
    assert (open_status["status"], open_status["chunks_received"]) == ("open", 3)
    assert open_status["events_received"] == 11

    finalized = tenant_api.call("POST", f"/v1/traces/{trace_id}/finalize", {"expected_chunks": 3})
    assert finalized.status_code == 202, finalized.text
    assert finalized.json()["status"] == "finalizing"
    assert finalized.json()["finalize"]["event_count"] == 11
    status = tenant_api.trace(trace_id)
    assert status["status"] in FINALIZED
    assert (status["chunks_received"], status["events_received"]) == (3, 11)
    late = tenant_api.put_chunk(trace_id, 3, chunk_body(11, 1))
    assert late.status_code == 409
    assert problem_type(late) == "trace-not-open"

    # The chunk bodies are in the bucket, under the tenant and trace.
    s3 = aws(cloud, "s3")
    prefix = f"tenants/{tenant_api.tenant}/traces/{trace_id}/chunks/"
    listed = s3.list_objects_v2(Bucket=cloud.stack.outputs["DataBucketName"], Prefix=prefix)
    assert sorted(o["Key"] for o in listed["Contents"]) == [
        f"{prefix}{r['chunk_seq']:06d}-{r['sha256']}.json" for r in receipts
    ]


def test_list_traces_newest_first_and_paginated(tenant_api: Api) -> None:
    created = [tenant_api.new_trace(f"trace {i}") for i in range(3)]
    first = tenant_api.call("GET", "/v1/traces?limit=2")
    assert first.status_code == 200
    page = first.json()
    assert [t["trace_id"] for t in page["items"]] == created[::-1][:2]
    assert page["next_token"]
    rest = tenant_api.call("GET", f"/v1/traces?limit=2&next_token={page['next_token']}").json()
    assert [t["trace_id"] for t in rest["items"]] == [created[0]]
    assert rest["next_token"] is None


def test_finalize_with_a_snapshot_never_uploaded_is_422(
    tenant_api: Api, cloud: LocalCloudInfo
) -> None:
    trace_id = tenant_api.new_trace()
    assert tenant_api.put_chunk(trace_id, 0, chunk_body(0, 3)).status_code == 201
    final = b"final workspace archive"
    final_ref = blob_ref(final, "application/gzip")
    answer = tenant_api.call(
        "POST",
        f"/v1/traces/{trace_id}/artifacts",
        {
            "sha256": final_ref["sha256"],
            "size": final_ref["size"],
            "media_type": "application/gzip",
        },
    ).json()
    upload = answer["upload"]
    assert httpx.put(upload["url"], content=final, headers=upload["headers"]).status_code == 200

    never_uploaded = blob_ref(b"base workspace archive", "application/gzip")
    response = tenant_api.call(
        "POST",
        f"/v1/traces/{trace_id}/finalize",
        {"expected_chunks": 1, "snapshots": {"base": never_uploaded, "final": final_ref}},
    )
    assert response.status_code == 422
    assert problem_type(response) == "validation-error"
    errors = response.json()["errors"]
    assert [e["pointer"] for e in errors] == ["/snapshots/base"]
    assert "not uploaded" in errors[0]["detail"]
    assert "/snapshots/base" in response.json()["detail"]
    # Refused: the trace is still open and can be finalized properly.
    assert tenant_api.trace(trace_id)["status"] == "open"


def test_unknown_route_and_unknown_trace_are_404(tenant_api: Api) -> None:
    for method, path in [("DELETE", "/v1/traces"), ("GET", "/v2/nothing"), ("GET", "/")]:
        response = tenant_api.call(method, path)
        assert response.status_code == 404, (method, path)
        assert response.json() == {"message": "Not Found"}  # API Gateway's own answer
    missing = tenant_api.call("GET", "/v1/traces/tr_01JZZZZZZZZZZZZZZZZZZZZZZZ")
    assert missing.status_code == 404
    assert problem_type(missing) == "trace-not-found"


def test_errors_are_problems_over_http(tenant_api: Api) -> None:
    invalid = trace_metadata()
    del invalid["repository"]["base_commit"]
    response = tenant_api.call("POST", "/v1/traces", invalid)
    assert response.status_code == 422
    assert problem_type(response) == "validation-error"
    assert "/repository/base_commit" in {e["pointer"] for e in response.json()["errors"]}

    form = tenant_api.call(
        "POST",
        "/v1/traces",
        raw=b"a=b",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415
    assert problem_type(form) == "unsupported-media-type"

    trace_id = tenant_api.new_trace()
    huge = b'{"events": [' + b" " * (4 * 1024 * 1024) + b"]}"
    too_large = tenant_api.put_chunk(trace_id, 0, huge)
    assert too_large.status_code == 413
    assert problem_type(too_large) == "payload-too-large"
    assert tenant_api.trace(trace_id)["chunks_received"] == 0
