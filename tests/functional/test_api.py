"""Every route and every documented error of the HTTP API, through real API Gateway v2
events, the real authorizer and the real API handler, with DynamoDB and S3 in moto."""

from __future__ import annotations

import re

import boto3
import orjson
import pytest

from tests.factories import blob_ref, chunk_body, event, events, trace_metadata
from tests.functional.conftest import NAMES, Client, make_token

PROBLEM = "application/problem+json"


def problem_type(response) -> str:
    assert response.headers["content-type"] == PROBLEM, response.body
    body = response.json()
    assert body["status"] == response.status
    assert body["detail"]
    return body["type"].removeprefix("urn:prtrace:problem:")


def new_trace(client: Client) -> str:
    response = client.call("POST", "/v1/traces", trace_metadata())
    assert response.status == 201, response.body
    return response.json()["trace_id"]


def put(client: Client, trace_id: str, seq: int, body: bytes):
    return client.call("PUT", f"/v1/traces/{trace_id}/chunks/{seq}", raw=body)


# ---- create / get / list -------------------------------------------------------------


def test_create_trace_returns_201_with_id_status_and_location(client):
    response = client.call("POST", "/v1/traces", trace_metadata())
    assert response.status == 201
    body = response.json()
    assert re.fullmatch(r"tr_[0-9A-HJKMNP-TV-Z]{26}", body["trace_id"])
    assert body["status"] == "open"
    assert body["metadata"] == trace_metadata()
    assert response.headers["location"] == f"/v1/traces/{body['trace_id']}"


def test_create_trace_invalid_body_points_at_each_bad_field(client):
    metadata = trace_metadata()
    del metadata["repository"]["base_commit"]
    metadata["author"]["kind"] = "robot"
    metadata["surprise"] = 1
    response = client.call("POST", "/v1/traces", metadata)
    assert response.status == 422
    assert problem_type(response) == "validation-error"
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert {"/repository/base_commit", "/author/kind", "/surprise"} <= pointers


def test_create_trace_rejects_non_json(client):
    response = client.call("POST", "/v1/traces", raw=b"{not json")
    assert response.status == 422
    assert problem_type(response) == "validation-error"
    assert response.json()["errors"] == [
        {"pointer": "", "detail": "request body is not valid JSON"}
    ]


def test_absurdly_long_integer_is_a_validation_error_not_a_crash(client):
    trace_id = new_trace(client)
    body = b'{"expected_chunks": ' + b"9" * 5000 + b"}"
    response = client.call("POST", f"/v1/traces/{trace_id}/finalize", raw=body)
    assert response.status == 422
    assert problem_type(response) == "validation-error"


@pytest.mark.parametrize("media_type", ["application/x-www-form-urlencoded", "text/plain"])
def test_non_json_bodies_are_415(client, media_type):
    response = client.call(
        "POST", "/v1/traces", trace_metadata(), headers={"Content-Type": media_type}
    )
    assert response.status == 415
    assert problem_type(response) == "unsupported-media-type"
    assert "application/json" in response.json()["detail"]


def _small_body_routes(client: Client) -> list[tuple[str, bytes]]:
    trace_id = new_trace(client)
    return [
        ("/v1/traces", orjson.dumps(trace_metadata())),
        (f"/v1/traces/{trace_id}/artifacts", orjson.dumps({"sha256": "a" * 64, "size": 3})),
        (f"/v1/traces/{trace_id}/finalize", b'{"expected_chunks": 1}'),
    ]


@pytest.mark.parametrize("raw", [b"\xff", b'{"expected_chunks": "\xc3"}', b"{}\xed\xa0\x80"])
def test_invalid_utf8_bodies_are_422_naming_the_byte(client, raw):
    for path, _ in _small_body_routes(client):
        response = client.call("POST", path, raw=raw)
        assert response.status == 422, (path, response.body)
        assert problem_type(response) == "validation-error"
        body = response.json()
        assert "UTF-8" in body["detail"]
        assert "offset" in body["detail"]
        assert [e["pointer"] for e in body["errors"]] == [""]


@pytest.mark.parametrize(
    "media_type",
    [
        "APPLICATION/JSON",
        "Application/Json; charset=utf-8",
        "application/json;charset=UTF-8",
        "application/merge-patch+json",
        "application/vnd.api+json; charset=utf-8",
    ],
)
def test_json_media_types_are_accepted_in_any_spelling(client, media_type):
    for path, body in _small_body_routes(client):
        response = client.call("POST", path, raw=body, headers={"Content-Type": media_type})
        # finalize of a trace with no chunk is a 409, but it was read as JSON to get there
        assert response.status in (201, 409), (path, response.body)
        if response.status == 409:
            assert problem_type(response) == "incomplete-trace"


@pytest.mark.parametrize(
    "media_type",
    ["application/jsonx", "+json", "text/json+xml", "application/json; charset=latin-1"],
)
def test_near_json_media_types_are_415(client, media_type):
    for path, body in _small_body_routes(client):
        response = client.call("POST", path, raw=body, headers={"Content-Type": media_type})
        assert response.status == 415, (path, response.body)
        assert problem_type(response) == "unsupported-media-type"


def test_get_trace_reports_counts(client):
    trace_id = new_trace(client)
    assert put(client, trace_id, 0, chunk_body(0, 7)).status == 201
    body = client.call("GET", f"/v1/traces/{trace_id}").json()
    assert (body["status"], body["chunks_received"], body["events_received"]) == ("open", 1, 7)


def test_unknown_trace_is_404(client):
    response = client.call("GET", "/v1/traces/tr_01JZZZZZZZZZZZZZZZZZZZZZZZ")
    assert response.status == 404
    assert problem_type(response) == "trace-not-found"


def test_malformed_trace_id_is_not_found(client):
    response = client.call("GET", "/v1/traces/not-a-trace")
    assert response.status == 404
    assert problem_type(response) == "trace-not-found"


def test_list_traces_is_paginated_newest_first(client):
    created = [new_trace(client) for _ in range(5)]
    seen, token = [], None
    while True:
        query = "?limit=2" + (f"&next_token={token}" if token else "")
        page = client.call("GET", f"/v1/traces{query}").json()
        assert len(page["items"]) <= 2
        seen += [t["trace_id"] for t in page["items"]]
        token = page["next_token"]
        if token is None:
            break
    assert seen == sorted(created, reverse=True)


def test_list_limit_out_of_range_is_422(client):
    response = client.call("GET", "/v1/traces?limit=1000")
    assert response.status == 422
    assert response.json()["errors"][0]["pointer"] == "/query/limit"


# ---- tenant isolation ----------------------------------------------------------------


def test_another_tenants_trace_is_404_everywhere(client, other_tenant):
    trace_id = new_trace(client)
    assert put(client, trace_id, 0, chunk_body(0, 3)).status == 201
    for method, path, body in [
        ("GET", f"/v1/traces/{trace_id}", None),
        ("POST", f"/v1/traces/{trace_id}/finalize", {"expected_chunks": 1}),
        ("POST", f"/v1/traces/{trace_id}/artifacts", {"sha256": "a" * 64, "size": 3}),
    ]:
        response = other_tenant.call(method, path, body)
        assert response.status == 404, (method, path)
        assert problem_type(response) == "trace-not-found"
    response = put(other_tenant, trace_id, 1, chunk_body(3, 3))
    assert response.status == 404
    assert other_tenant.call("GET", "/v1/traces").json()["items"] == []
    # And nothing the other tenant tried changed the trace.
    body = client.call("GET", f"/v1/traces/{trace_id}").json()
    assert (body["status"], body["chunks_received"]) == ("open", 1)


# ---- authentication and scopes -------------------------------------------------------


def test_missing_and_bad_tokens_are_refused(gateway):
    assert Client(gateway, None).call("GET", "/v1/traces").status == 401
    assert Client(gateway, "prt_nope").call("GET", "/v1/traces").status == 403
    forged = "prt_0123456789abcdef_" + "0" * 64
    assert Client(gateway, forged).call("GET", "/v1/traces").status == 403


def test_scopes_are_enforced_per_route(gateway):
    reader = Client(gateway, make_token("acme", ["read"]))
    response = reader.call("POST", "/v1/traces", trace_metadata())
    assert response.status == 403
    assert problem_type(response) == "insufficient-scope"
    assert response.json()["required_scope"] == "ingest"
    assert reader.call("GET", "/v1/traces").status == 200
    writer = Client(gateway, make_token("acme", ["ingest"]))
    assert writer.call("GET", "/v1/traces").status == 403


def test_admin_scope_implies_the_others(gateway):
    admin = Client(gateway, make_token("acme", ["admin"]))
    trace_id = new_trace(admin)
    assert admin.call("GET", f"/v1/traces/{trace_id}").status == 200


# ---- chunks ---------------------------------------------------------------------------


def test_chunk_replay_gets_the_same_answer(client):
    trace_id = new_trace(client)
    first = put(client, trace_id, 0, chunk_body(0, 5))
    assert first.status == 201
    assert first.json()["sha256"]
    assert first.json()["event_count"] == 5
    again = put(client, trace_id, 0, chunk_body(0, 5))
    assert (again.status, again.body) == (first.status, first.body)
    assert again.headers.get("idempotent-replayed") == "true"
    # Same events, different JSON text: same canonical chunk, same answer.
    reformatted = orjson.dumps({"events": events(0, 5)}, option=orjson.OPT_INDENT_2)
    assert put(client, trace_id, 0, reformatted).body == first.body
    assert client.call("GET", f"/v1/traces/{trace_id}").json()["events_received"] == 5


def test_different_body_for_stored_seq_is_409_with_stored_hash(client):
    trace_id = new_trace(client)
    stored = put(client, trace_id, 0, chunk_body(0, 5)).json()["sha256"]
    altered = events(0, 5)
    altered[4]["payload"]["text"] = "I changed my mind"
    response = put(client, trace_id, 0, orjson.dumps({"events": altered}))
    assert response.status == 409
    assert problem_type(response) == "chunk-conflict"
    assert response.json()["stored_sha256"] == stored
    assert stored in response.json()["detail"]


def test_chunk_that_does_not_continue_previous_neighbour_is_409(client):
    trace_id = new_trace(client)
    assert put(client, trace_id, 0, chunk_body(0, 10)).status == 201
    response = put(client, trace_id, 1, chunk_body(11, 5))  # event 10 skipped
    assert response.status == 409
    assert problem_type(response) == "seq-discontinuity"
    assert response.json()["expected_seq"] == 10
    assert "must have seq 10, got 11" in response.json()["detail"]


def test_chunk_that_does_not_meet_next_neighbour_is_409(client):
    trace_id = new_trace(client)
    assert put(client, trace_id, 2, chunk_body(20, 5)).status == 201  # out of order is fine
    response = put(client, trace_id, 1, chunk_body(10, 5))  # ends at 14, next starts at 20
    assert response.status == 409
    assert response.json()["expected_seq"] == 19
    assert response.json()["errors"][0]["pointer"] == "/events/4/seq"


def test_chunk_that_cannot_fit_a_distant_neighbour_is_409(client):
    trace_id = new_trace(client)
    assert put(client, trace_id, 0, chunk_body(0, 10)).status == 201
    # Chunks 1 and 2 would have to share event 10 alone: chunk 3 can start at 12 at the earliest.
    response = put(client, trace_id, 3, chunk_body(11, 2))
    assert response.status == 409
    assert problem_type(response) == "seq-discontinuity"
    assert response.json()["expected_seq"] == 12
    assert "at least 12" in response.json()["detail"]
    assert put(client, trace_id, 3, chunk_body(12, 2)).status == 201


def test_chunk_starting_before_its_position_allows_is_422(client):
    trace_id = new_trace(client)
    response = put(client, trace_id, 5, chunk_body(2, 3))  # chunks 0..4 need 5 events
    assert response.status == 422
    assert response.json()["errors"][0]["pointer"] == "/events/0/seq"


def test_duplicate_event_id_across_chunks_is_rejected(client):
    trace_id = new_trace(client)
    assert put(client, trace_id, 0, chunk_body(0, 3)).status == 201
    clash = [event(3), event(4, event_id="ev-0000001")]
    response = put(client, trace_id, 1, orjson.dumps({"events": clash}))
    assert response.status == 409
    assert problem_type(response) == "duplicate-event-id"
    assert response.json()["duplicates"] == [{"event_id": "ev-0000001", "chunk_seq": 0}]
    assert client.call("GET", f"/v1/traces/{trace_id}").json()["chunks_received"] == 1


def test_invalid_events_get_json_pointers(client):
    trace_id = new_trace(client)
    bad = events(0, 3)
    bad[1]["payload"]["argv"] = []
    bad[2]["ts"] = "2026-11-25 09:00:00"
    response = put(client, trace_id, 0, orjson.dumps({"events": bad}))
    assert response.status == 422
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert pointers == {"/events/1/payload/argv", "/events/2/ts"}


def test_chunk_body_not_json_is_422(client):
    trace_id = new_trace(client)
    response = put(client, trace_id, 0, b"\x00\xff garbage")
    assert response.status == 422
    assert problem_type(response) == "validation-error"


def test_chunk_body_over_limit_is_413_and_nothing_is_stored(client):
    trace_id = new_trace(client)
    huge = b'{"events": [' + b" " * (4 * 1024 * 1024) + b"]}"
    response = put(client, trace_id, 0, huge)
    assert response.status == 413
    assert problem_type(response) == "payload-too-large"
    assert response.json()["limit_bytes"] == 4 * 1024 * 1024
    assert client.call("GET", f"/v1/traces/{trace_id}").json()["chunks_received"] == 0


def test_small_body_over_limit_is_413(client):
    metadata = trace_metadata()
    metadata["task"]["description"] = "x" * 70_000
    assert client.call("POST", "/v1/traces", metadata).status == 413


def test_chunk_for_unknown_trace_is_404(client):
    response = put(client, "tr_01JZZZZZZZZZZZZZZZZZZZZZZZ", 0, chunk_body(0, 1))
    assert response.status == 404


@pytest.mark.parametrize("seq", ["-1", "abc", "1000000"])
def test_bad_chunk_seq_is_422(client, seq):
    trace_id = new_trace(client)
    response = client.call("PUT", f"/v1/traces/{trace_id}/chunks/{seq}", raw=chunk_body(0, 1))
    assert response.status == 422
    assert response.json()["errors"][0]["pointer"] == "/path/chunk_seq"


def test_chunk_bodies_are_stored_canonically_under_the_tenant(client):
    trace_id = new_trace(client)
    receipt = put(client, trace_id, 0, chunk_body(0, 3)).json()
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=NAMES.bucket)["Contents"]]
    assert keys == [f"tenants/acme/traces/{trace_id}/chunks/000000-{receipt['sha256']}.json"]
    stored = s3.get_object(Bucket=NAMES.bucket, Key=keys[0])["Body"].read()
    assert [e["event_id"] for e in orjson.loads(stored)["events"]] == [
        "ev-0000000",
        "ev-0000001",
        "ev-0000002",
    ]


# ---- artifacts -----------------------------------------------------------------------


def test_artifact_upload_is_presigned_and_bound_to_checksum(client):
    trace_id = new_trace(client)
    ref = blob_ref(b"hello world")
    response = client.call(
        "POST",
        f"/v1/traces/{trace_id}/artifacts",
        {"sha256": ref["sha256"], "size": ref["size"], "media_type": "text/plain"},
    )
    assert response.status == 201
    body = response.json()
    assert body["status"] == "upload_required"
    assert body["blob_ref"] == ref
    upload = body["upload"]
    assert upload["method"] == "PUT"
    assert f"tenants/acme/traces/{trace_id}/artifacts/sha256/{ref['sha256']}" in upload["url"]
    assert upload["headers"]["Content-Length"] == str(ref["size"])
    assert upload["headers"]["x-amz-checksum-sha256"]


def test_artifact_already_present_needs_no_upload(client):
    trace_id = new_trace(client)
    content = b"stdout of the failing run"
    ref = blob_ref(content)
    boto3.client("s3").put_object(
        Bucket=NAMES.bucket,
        Body=content,
        Key=f"tenants/acme/traces/{trace_id}/artifacts/sha256/{ref['sha256']}",
    )
    body = client.call(
        "POST", f"/v1/traces/{trace_id}/artifacts", {"sha256": ref["sha256"], "size": ref["size"]}
    ).json()
    assert body["status"] == "present"
    assert body["upload"] is None


def test_artifact_request_validation(client):
    trace_id = new_trace(client)
    response = client.call(
        "POST", f"/v1/traces/{trace_id}/artifacts", {"sha256": "XYZ", "size": -1}
    )
    assert response.status == 422
    assert {e["pointer"] for e in response.json()["errors"]} == {"/sha256", "/size"}


# ---- finalize ------------------------------------------------------------------------


def test_finalize_names_missing_chunks(client):
    trace_id = new_trace(client)
    assert put(client, trace_id, 0, chunk_body(0, 5)).status == 201
    assert put(client, trace_id, 2, chunk_body(10, 5)).status == 201
    response = client.call("POST", f"/v1/traces/{trace_id}/finalize", {"expected_chunks": 4})
    assert response.status == 409
    assert problem_type(response) == "incomplete-trace"
    assert response.json()["missing_chunks"] == [1, 3]
    assert "missing chunk seq(s) 1, 3" in response.json()["detail"]


def test_finalize_names_chunks_beyond_the_expected_count(client):
    trace_id = new_trace(client)
    assert put(client, trace_id, 0, chunk_body(0, 5)).status == 201
    assert put(client, trace_id, 1, chunk_body(5, 5)).status == 201
    response = client.call("POST", f"/v1/traces/{trace_id}/finalize", {"expected_chunks": 1})
    assert response.status == 409
    assert response.json()["unexpected_chunks"] == [1]


def test_finalize_then_trace_is_closed(client):
    trace_id = new_trace(client)
    for seq in range(3):
        assert put(client, trace_id, seq, chunk_body(seq * 4, 4)).status == 201
    response = client.call("POST", f"/v1/traces/{trace_id}/finalize", {"expected_chunks": 3})
    assert response.status == 202
    body = response.json()
    assert body["status"] == "finalizing"
    assert body["finalize"]["event_count"] == 12
    assert body["finalize"]["expected_chunks"] == 3
    # Retrying finalize is harmless; finalizing differently is not.
    again = client.call("POST", f"/v1/traces/{trace_id}/finalize", {"expected_chunks": 3})
    assert (again.status, again.json()["finalize"]) == (202, body["finalize"])
    other = client.call("POST", f"/v1/traces/{trace_id}/finalize", {"expected_chunks": 4})
    assert other.status == 409
    assert problem_type(other) == "trace-not-open"
    # A closed trace takes no new chunk, but a replay of a stored one still gets its answer.
    late = put(client, trace_id, 3, chunk_body(12, 1))
    assert late.status == 409
    assert problem_type(late) == "trace-not-open"
    assert put(client, trace_id, 0, chunk_body(0, 4)).status == 201
    artifact = client.call(
        "POST", f"/v1/traces/{trace_id}/artifacts", {"sha256": "a" * 64, "size": 1}
    )
    assert artifact.status == 409


def test_finalize_validation(client):
    trace_id = new_trace(client)
    response = client.call("POST", f"/v1/traces/{trace_id}/finalize", {"expected_chunks": 0})
    assert response.status == 422
    assert response.json()["errors"][0]["pointer"] == "/expected_chunks"


def test_finalize_records_the_clients_redaction_count(client):
    trace_id = new_trace(client)
    assert put(client, trace_id, 0, chunk_body(0, 2)).status == 201
    path = f"/v1/traces/{trace_id}/finalize"
    response = client.call("POST", path, {"expected_chunks": 1, "redactions": 3})
    assert response.status == 202
    assert response.json()["finalize"]["redactions"] == 3
    assert client.call("GET", f"/v1/traces/{trace_id}").json()["finalize"]["redactions"] == 3
    # A retry is the same request only with the same count.
    assert client.call("POST", path, {"expected_chunks": 1, "redactions": 3}).status == 202
    other = client.call("POST", path, {"expected_chunks": 1, "redactions": 4})
    assert other.status == 409
    assert problem_type(other) == "trace-not-open"


@pytest.mark.parametrize("redactions", [-1, "3", 1.5])
def test_finalize_redactions_must_be_a_count(client, redactions):
    trace_id = new_trace(client)
    path = f"/v1/traces/{trace_id}/finalize"
    response = client.call("POST", path, {"expected_chunks": 1, "redactions": redactions})
    assert response.status == 422
    assert response.json()["errors"][0]["pointer"] == "/redactions"


# ---- idempotency keys ----------------------------------------------------------------


def test_create_with_idempotency_key_creates_once(client):
    headers = {"Idempotency-Key": "create-7f3a"}
    first = client.call("POST", "/v1/traces", trace_metadata(), headers=headers)
    second = client.call("POST", "/v1/traces", trace_metadata(), headers=headers)
    assert first.status == second.status == 201
    assert first.json() == second.json()
    assert len(client.call("GET", "/v1/traces").json()["items"]) == 1


def test_idempotency_key_reused_with_another_body_is_422(client):
    headers = {"Idempotency-Key": "create-7f3a"}
    assert client.call("POST", "/v1/traces", trace_metadata("a"), headers=headers).status == 201
    response = client.call("POST", "/v1/traces", trace_metadata("b"), headers=headers)
    assert response.status == 422
    assert problem_type(response) == "idempotency-key-reused"
    assert len(client.call("GET", "/v1/traces").json()["items"]) == 1


def test_idempotency_keys_are_per_tenant(client, other_tenant):
    headers = {"Idempotency-Key": "same-key"}
    mine = client.call("POST", "/v1/traces", trace_metadata(), headers=headers).json()
    theirs = other_tenant.call("POST", "/v1/traces", trace_metadata(), headers=headers).json()
    assert mine["trace_id"] != theirs["trace_id"]


def test_failed_request_does_not_burn_the_key(client):
    headers = {"Idempotency-Key": "fin-1"}
    trace_id = new_trace(client)
    path = f"/v1/traces/{trace_id}/finalize"
    assert client.call("POST", path, {"expected_chunks": 1}, headers=headers).status == 409
    assert put(client, trace_id, 0, chunk_body(0, 2)).status == 201
    assert client.call("POST", path, {"expected_chunks": 1}, headers=headers).status == 202


def test_invalid_idempotency_key_is_422(client):
    response = client.call(
        "POST", "/v1/traces", trace_metadata(), headers={"Idempotency-Key": "x" * 300}
    )
    assert response.status == 422


def test_artifact_request_replay_answers_afresh(client):
    """Replays are guarded by the key but never return a stale URL or a stale status."""
    trace_id = new_trace(client)
    headers = {"Idempotency-Key": "art-1"}
    content = b"0123456789"
    ref = blob_ref(content)
    request = {"sha256": ref["sha256"], "size": ref["size"]}
    path = f"/v1/traces/{trace_id}/artifacts"
    first = client.call("POST", path, request, headers=headers).json()
    assert first["status"] == "upload_required"
    boto3.client("s3").put_object(
        Bucket=NAMES.bucket,
        Body=content,
        Key=f"tenants/acme/traces/{trace_id}/artifacts/sha256/{ref['sha256']}",
    )
    second = client.call("POST", path, request, headers=headers).json()
    assert second["status"] == "present"
    assert second["blob_ref"] == first["blob_ref"]
    reused = client.call("POST", path, {"sha256": "c" * 64, "size": 3}, headers=headers)
    assert reused.status == 422
    assert problem_type(reused) == "idempotency-key-reused"


# ---- health, errors, OpenAPI ---------------------------------------------------------


def test_health_and_readiness(gateway):
    anonymous = Client(gateway, None)
    assert anonymous.call("GET", "/healthz").json() == {"status": "ok"}
    ready = anonymous.call("GET", "/readyz")
    assert (ready.status, ready.json()["checks"]) == (200, {"table": "ok", "bucket": "ok"})


def test_readiness_fails_when_the_bucket_is_gone(gateway):
    boto3.client("s3").delete_bucket(Bucket=NAMES.bucket)
    ready = Client(gateway, None).call("GET", "/readyz")
    assert ready.status == 503
    assert ready.json()["checks"] == {"table": "ok", "bucket": "unavailable"}


def test_unknown_route_is_a_404_problem(client):
    response = client.call("GET", "/v1/nothing-here")
    assert response.status == 404
    assert problem_type(response) == "route-not-found"


def test_unexpected_failure_is_a_clean_500(client, monkeypatch):
    from functions.api import dependencies
    from functions.api.handler import app

    class OnFire:
        def get_trace(self, *args: object) -> None:
            raise RuntimeError("database on fire")

    monkeypatch.setitem(app.dependency_overrides, dependencies.ingest_service, OnFire)
    response = client.call("GET", "/v1/traces/tr_01JZZZZZZZZZZZZZZZZZZZZZZZ")
    assert response.status == 500
    assert problem_type(response) == "internal-error"
    assert "fire" not in response.json()["detail"]


def test_idempotency_key_with_a_trailing_newline_is_refused(client):
    response = client.call(
        "POST", "/v1/traces", trace_metadata(), headers={"Idempotency-Key": "abc\n"}
    )
    assert response.status == 422


def test_empty_artifact_can_be_declared(client):
    trace_id = new_trace(client)
    ref = blob_ref(b"")
    response = client.call(
        "POST", f"/v1/traces/{trace_id}/artifacts", {"sha256": ref["sha256"], "size": 0}
    )
    assert response.status == 201
    assert response.json()["blob_ref"] == {**ref, "media_type": "application/octet-stream"}


# ---- HTTP semantics ------------------------------------------------------------------


def test_an_undeclared_method_on_a_route_is_405_with_allow(client):
    response = client.call("DELETE", "/v1/traces")
    assert response.status == 405
    assert problem_type(response) == "method-not-allowed"
    assert response.headers["allow"] == "GET, POST"
    assert response.json()["allowed"] == ["GET", "POST"]


def test_whole_number_floats_are_integers_in_small_bodies(client):
    trace_id = new_trace(client)
    artifact = client.call(
        "POST",
        f"/v1/traces/{trace_id}/artifacts",
        raw=b'{"sha256": "' + b"a" * 64 + b'", "size": 3.0}',
    )
    assert artifact.status == 201, artifact.body
    assert artifact.json()["blob_ref"]["size"] == 3
    assert put(client, trace_id, 0, chunk_body(0, 2)).status == 201
    done = client.call("POST", f"/v1/traces/{trace_id}/finalize", raw=b'{"expected_chunks": 1.0}')
    assert done.status == 202, done.body
    assert done.json()["finalize"]["expected_chunks"] == 1


def test_fractional_numbers_are_refused_where_integers_are_expected(client):
    trace_id = new_trace(client)
    response = client.call(
        "POST", f"/v1/traces/{trace_id}/finalize", raw=b'{"expected_chunks": 1.5}'
    )
    assert response.status == 422
    assert response.json()["errors"][0]["pointer"] == "/expected_chunks"


@pytest.mark.parametrize("seq", ["01", "1.0", "+1", "1e0", "%201"])
def test_a_chunk_seq_that_is_not_canonical_decimal_is_refused(client, seq):
    trace_id = new_trace(client)
    assert put(client, trace_id, 0, chunk_body(0, 2)).status == 201
    response = client.call("PUT", f"/v1/traces/{trace_id}/chunks/{seq}", raw=chunk_body(2, 2))
    assert response.status == 422, response.body
    assert problem_type(response) == "validation-error"
    assert [e["pointer"] for e in response.json()["errors"]] == ["/path/chunk_seq"]
    # nothing was stored under chunk 1
    assert client.call("GET", f"/v1/traces/{trace_id}").json()["chunks_received"] == 1


def test_a_404_does_not_echo_a_huge_id_whole(client):
    response = client.call("GET", "/v1/traces/" + "x" * 30_000)
    assert response.status == 404
    assert problem_type(response) == "trace-not-found"
    assert len(response.body) < 2_000
    assert response.json()["instance"].endswith("(30011 characters)")
