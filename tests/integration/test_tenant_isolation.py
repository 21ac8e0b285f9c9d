"""Tenant isolation over HTTP: another tenant's trace does not exist for you."""

from __future__ import annotations

from collections.abc import Callable

from tests.factories import blob_ref, chunk_body, trace_metadata
from tests.local_cloud import Api, problem_type


def test_another_tenants_trace_is_404_everywhere(make_api: Callable[..., Api]) -> None:
    owner, other = make_api(), make_api()
    trace_id = owner.new_trace()
    assert owner.put_chunk(trace_id, 0, chunk_body(0, 3)).status_code == 201
    ref = blob_ref(b"someone else's artifact")

    attempts = [
        ("GET", f"/v1/traces/{trace_id}", None, None),
        ("PUT", f"/v1/traces/{trace_id}/chunks/1", None, chunk_body(3, 3)),
        ("PUT", f"/v1/traces/{trace_id}/chunks/0", None, chunk_body(0, 3)),  # a stored one
        ("POST", f"/v1/traces/{trace_id}/artifacts", {"sha256": ref["sha256"], "size": 23}, None),
        ("POST", f"/v1/traces/{trace_id}/finalize", {"expected_chunks": 1}, None),
    ]
    for method, path, body, raw in attempts:
        response = other.call(method, path, body, raw=raw)
        assert response.status_code == 404, (method, path, response.text)
        assert problem_type(response) == "trace-not-found"
        assert trace_id in response.json()["detail"]

    listing = other.call("GET", "/v1/traces?limit=100")
    assert listing.status_code == 200
    assert listing.json()["items"] == []

    # Nothing the other tenant tried changed the trace.
    status = owner.trace(trace_id)
    assert (status["status"], status["chunks_received"], status["events_received"]) == (
        "open",
        1,
        3,
    )
    assert [t["trace_id"] for t in owner.call("GET", "/v1/traces").json()["items"]] == [trace_id]


def test_same_idempotency_key_in_two_tenants_makes_two_traces(
    make_api: Callable[..., Api],
) -> None:
    first, second = make_api(), make_api()
    headers = {"Idempotency-Key": "shared-key-1"}
    mine = first.call("POST", "/v1/traces", trace_metadata(), headers=headers)
    theirs = second.call("POST", "/v1/traces", trace_metadata(), headers=headers)
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["trace_id"] != theirs.json()["trace_id"]
    assert second.call("GET", f"/v1/traces/{mine.json()['trace_id']}").status_code == 404
