"""Idempotent replays over HTTP: POSTs through Idempotency-Key (Powertools idempotency in
the deployed idempotency table), chunk PUTs by content."""

from __future__ import annotations

import uuid

import orjson

from tests.factories import chunk_body, events, trace_metadata
from tests.local_cloud import Api, problem_type


def test_create_replay_returns_the_same_trace(tenant_api: Api) -> None:
    headers = {"Idempotency-Key": f"create-{uuid.uuid4()}"}
    first = tenant_api.call("POST", "/v1/traces", trace_metadata(), headers=headers)
    second = tenant_api.call("POST", "/v1/traces", trace_metadata(), headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json()["trace_id"] == first.json()["trace_id"]
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    # functions/api marks replays only on chunk PUTs (Idempotent-Replayed); a replayed POST
    # is recognisable by its unchanged body alone.
    assert "idempotent-replayed" not in first.headers
    listed = tenant_api.call("GET", "/v1/traces").json()["items"]
    assert [t["trace_id"] for t in listed] == [first.json()["trace_id"]]


def test_same_key_with_another_body_is_422(tenant_api: Api) -> None:
    headers = {"Idempotency-Key": f"create-{uuid.uuid4()}"}
    first = tenant_api.call("POST", "/v1/traces", trace_metadata("a"), headers=headers)
    assert first.status_code == 201
    reused = tenant_api.call("POST", "/v1/traces", trace_metadata("b"), headers=headers)
    assert reused.status_code == 422
    assert problem_type(reused) == "idempotency-key-reused"
    assert headers["Idempotency-Key"] in reused.json()["detail"]
    assert len(tenant_api.call("GET", "/v1/traces").json()["items"]) == 1


def test_finalize_replay_and_failed_request_does_not_burn_the_key(tenant_api: Api) -> None:
    trace_id = tenant_api.new_trace()
    path = f"/v1/traces/{trace_id}/finalize"
    headers = {"Idempotency-Key": f"finalize-{uuid.uuid4()}"}
    early = tenant_api.call("POST", path, {"expected_chunks": 1}, headers=headers)
    assert early.status_code == 409
    assert problem_type(early) == "incomplete-trace"
    assert tenant_api.put_chunk(trace_id, 0, chunk_body(0, 2)).status_code == 201
    done = tenant_api.call("POST", path, {"expected_chunks": 1}, headers=headers)
    assert done.status_code == 202, done.text
    replay = tenant_api.call("POST", path, {"expected_chunks": 1}, headers=headers)
    assert (replay.status_code, replay.json()) == (202, done.json())


def test_chunk_replay_gets_the_same_receipt(tenant_api: Api) -> None:
    trace_id = tenant_api.new_trace()
    first = tenant_api.put_chunk(trace_id, 0, chunk_body(0, 5))
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    again = tenant_api.put_chunk(trace_id, 0, chunk_body(0, 5))
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    # Same events in other JSON text: the same canonical chunk, the same receipt.
    reformatted = orjson.dumps({"events": events(0, 5)}, option=orjson.OPT_INDENT_2)
    assert tenant_api.put_chunk(trace_id, 0, reformatted).json() == first.json()
    assert tenant_api.trace(trace_id)["events_received"] == 5


def test_different_body_for_a_stored_chunk_is_409(tenant_api: Api) -> None:
    trace_id = tenant_api.new_trace()
    stored = tenant_api.put_chunk(trace_id, 0, chunk_body(0, 5)).json()["sha256"]
    altered = events(0, 5)
    altered[4]["payload"]["text"] = "I changed my mind"
    response = tenant_api.put_chunk(trace_id, 0, orjson.dumps({"events": altered}))
    assert response.status_code == 409
    assert problem_type(response) == "chunk-conflict"
    assert response.json()["stored_sha256"] == stored
    assert response.json()["sent_sha256"] != stored
    status = tenant_api.trace(trace_id)
    assert (status["chunks_received"], status["events_received"]) == (1, 5)
