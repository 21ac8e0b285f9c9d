"""PrtraceClient against the in-process API: retries, Retry-After, idempotency keys,
409 resolution, artifacts, and errors a user can act on."""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import orjson
import pytest

from prtrace.storage_keys import artifact_key
from prtrace_client import (
    ApiError,
    ChunkConflict,
    NotFound,
    PrtraceClient,
    RetriesExhausted,
    RetryPolicy,
    TransportError,
    Unauthorized,
    ValidationFailed,
)
from prtrace_client.config import ClientConfig
from prtrace_client.retry import parse_retry_after
from tests.client.conftest import Sleeps, make_client
from tests.client.fake_api import TENANT, FakeApi, Fault
from tests.factories import chunk_body, trace_metadata


def keys(api: FakeApi, method: str, path_end: str) -> list[str | None]:
    return [
        r.headers.get("idempotency-key")
        for r in api.requests
        if r.method == method and r.url.path.endswith(path_end)
    ]


def test_retries_5xx_with_full_jitter_backoff_and_one_idempotency_key(
    api: FakeApi, client: PrtraceClient, sleeps: Sleeps
) -> None:
    api.add_fault(Fault("POST", "/v1/traces", status=503, times=3))
    created = client.create_trace(trace_metadata())
    assert created["status"] == "open"
    sent = keys(api, "POST", "/v1/traces")
    assert len(sent) == 4
    assert sent[0] is not None
    assert len(set(sent)) == 1  # the same logical call, the same key
    # Full jitter: each wait within [0, min(cap, base * 2**retry)].
    assert len(sleeps) == 3
    for retry, slept in enumerate(sleeps):
        assert 0 <= slept <= min(2.0, 0.1 * 2**retry)
    # Another logical call gets another key.
    client.create_trace(trace_metadata())
    assert len(set(keys(api, "POST", "/v1/traces"))) == 2


def test_retry_after_is_honoured_and_bounded(
    api: FakeApi, client: PrtraceClient, sleeps: Sleeps
) -> None:
    api.add_fault(Fault("GET", "/v1/traces", status=429, headers={"Retry-After": "3"}))
    api.add_fault(Fault("GET", "/v1/traces", status=429, headers={"Retry-After": "86400"}))
    assert client.list_traces()["items"] == []
    assert sleeps == [3.0, 30.0]  # the policy's max_retry_after_s caps a day


def test_retry_after_http_date() -> None:
    now = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=42), usegmt=True)
    assert parse_retry_after(later, now) == 42.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now) == 0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None) is None


def test_backoff_is_full_jitter_capped() -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=4.0)
    rng = random.Random(7)
    samples = [policy.backoff(10, rng) for _ in range(2000)]
    assert max(samples) <= 4.0
    assert min(samples) < 0.4  # full jitter reaches near zero, not just [cap/2, cap]
    assert sum(samples) / len(samples) == pytest.approx(2.0, rel=0.1)


def test_exhausted_retries_raise_with_the_last_status(api: FakeApi, sleeps: Sleeps) -> None:
    client = make_client(api, sleeps, attempts=3)
    api.add_fault(Fault("GET", "/v1/traces", status=502, times=10))
    with pytest.raises(RetriesExhausted) as caught:
        client.list_traces()
    assert caught.value.status == 502
    assert len(sleeps) == 2


def test_network_errors_are_retried_then_reported(api: FakeApi, sleeps: Sleeps) -> None:
    client = make_client(api, sleeps, attempts=3)
    api.add_fault(Fault("GET", "/v1/traces", drop_before=True, times=2))
    assert client.list_traces()["items"] == []
    api.add_fault(Fault("GET", "/v1/traces", drop_before=True, times=3))
    with pytest.raises(TransportError, match=r"cannot reach http://api.test after 3 attempt") as e:
        client.list_traces()
    assert "prtrace push" not in str(e.value)  # a read has nothing to resend


def test_an_unreachable_upload_says_push_resends_it(api: FakeApi, sleeps: Sleeps) -> None:
    client = make_client(api, sleeps, attempts=2)
    api.add_fault(Fault("POST", "/v1/traces", drop_before=True, times=2))
    with pytest.raises(TransportError, match=r"`prtrace push` resends what was not acknowl"):
        client.create_trace(trace_metadata())


def test_lost_create_answer_is_replayed_not_duplicated(api: FakeApi, client: PrtraceClient) -> None:
    api.add_fault(Fault("POST", "/v1/traces", drop_after=True))
    created = client.create_trace(trace_metadata())
    assert [s for s in api.served if s[0] == "POST"] == [("POST", "/v1/traces", 201)] * 2
    listed = client.list_traces()["items"]
    assert [t["trace_id"] for t in listed] == [created["trace_id"]]


def test_chunk_409_with_the_same_hash_is_already_stored(
    api: FakeApi, client: PrtraceClient
) -> None:
    trace_id = client.create_trace(trace_metadata())["trace_id"]
    body = chunk_body(0, 3)
    stored = client.put_chunk(trace_id, 0, body)
    # A proxy or an older server may answer a replay with 409 naming the same digest.
    conflict = {
        "type": "urn:prtrace:problem:chunk-conflict",
        "status": 409,
        "detail": "chunk 0 is already stored",
        "stored_sha256": stored["sha256"],
        "sent_sha256": stored["sha256"],
    }
    api.add_fault(Fault("PUT", r".*/chunks/0", status=409, body=conflict))
    replayed = client.put_chunk(trace_id, 0, body)
    assert replayed == {"trace_id": trace_id, "chunk_seq": 0, "sha256": stored["sha256"],
                        "replayed": True}  # fmt: skip


def test_chunk_409_with_another_hash_is_a_clear_conflict(client: PrtraceClient) -> None:
    trace_id = client.create_trace(trace_metadata())["trace_id"]
    stored = client.put_chunk(trace_id, 0, chunk_body(0, 3))
    assert "replayed" not in stored
    # A replay: the same receipt, marked replayed (the API's Idempotent-Replayed header).
    assert client.put_chunk(trace_id, 0, chunk_body(0, 3)) == stored | {"replayed": True}
    altered = orjson.loads(chunk_body(0, 3))
    altered["events"][2]["event_id"] = "changed"
    with pytest.raises(ChunkConflict) as caught:
        client.put_chunk(trace_id, 0, orjson.dumps(altered))
    assert caught.value.trace_id == trace_id
    assert caught.value.chunk_seq == 0
    assert caught.value.stored_sha256 == stored["sha256"]
    assert f"trace {trace_id} already stores a different chunk 0" in str(caught.value)


def test_validation_problems_name_the_fields(client: PrtraceClient) -> None:
    trace_id = client.create_trace(trace_metadata())["trace_id"]
    with pytest.raises(ValidationFailed) as caught:
        client.put_chunk(trace_id, 1, chunk_body(0, 2))
    message = str(caught.value)
    assert f"PUT /v1/traces/{trace_id}/chunks/1 failed: HTTP 422 validation-error" in message
    assert "at /events/0/seq: chunk 1 cannot start before event seq 1" in message
    assert caught.value.field_problems[0].pointer == "/events/0/seq"


def test_auth_and_not_found_errors_say_what_to_do(api: FakeApi, sleeps: Sleeps) -> None:
    wrong = PrtraceClient(
        config=ClientConfig("http://api.test", "prt_wrong", "test"), transport=api.transport()
    )
    with pytest.raises(Unauthorized, match="set PRTRACE_TOKEN or pass --token"):
        wrong.list_traces()
    client = make_client(api, sleeps)
    with pytest.raises(NotFound, match="trace tr_01M8AXW2HE5EQVXK8PANGCVZH9 does not exist"):
        client.get_trace("tr_01M8AXW2HE5EQVXK8PANGCVZH9")


def test_artifact_upload_streams_and_skips_what_is_present(
    api: FakeApi, client: PrtraceClient, tmp_path: Path
) -> None:
    trace_id = client.create_trace(trace_metadata())["trace_id"]
    content = b"pytest output\n" * 200_000  # several read blocks
    path = tmp_path / "out.txt"
    path.write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    first = client.upload_artifact(trace_id, path, "text/plain")
    assert first.uploaded
    assert first.blob_ref == {"uri": f"artifact://sha256/{digest}", "sha256": digest,
                              "size": len(content), "media_type": "text/plain"}  # fmt: skip
    assert api.blobs.objects[artifact_key(TENANT, trace_id, digest)] == content
    puts = [r for r in api.requests if r.url.host == "storage.test"]
    assert len(puts) == 1
    assert "authorization" not in puts[0].headers  # the bearer token never goes to storage
    again = client.upload_artifact(trace_id, path, "text/plain")
    assert not again.uploaded
    assert len([r for r in api.requests if r.url.host == "storage.test"]) == 1


def test_finalize_and_status(client: PrtraceClient) -> None:
    trace_id = client.create_trace(trace_metadata())["trace_id"]
    client.put_chunk(trace_id, 0, chunk_body(0, 4))
    view = client.finalize(trace_id, 1)
    assert view["status"] == "finalizing"
    assert client.get_trace(trace_id)["events_received"] == 4
    assert client.result_links(trace_id) == {}
    assert [t["trace_id"] for t in client.iter_traces(page_size=1)] == [trace_id]


def test_finalize_accepted_earlier_is_recognised_after_the_pipeline_moved_on(
    api: FakeApi, client: PrtraceClient
) -> None:
    trace_id = client.create_trace(trace_metadata())["trace_id"]
    client.put_chunk(trace_id, 0, chunk_body(0, 4))
    client.finalize(trace_id, 1, extra={"redactions": 2})
    key = (TENANT, trace_id)
    api.traces.traces[key] = replace(api.traces.traces[key], status="testing")
    again = client.finalize(trace_id, 1, extra={"redactions": 2})  # a new key: no replay
    assert (again["status"], again["finalize"]["redactions"]) == ("testing", 2)
    with pytest.raises(ApiError) as caught:  # another finalize is a real conflict
        client.finalize(trace_id, 2)
    assert caught.value.problem_type == "trace-not-open"
    assert "trace_status" in caught.value.problem


def test_the_in_process_api_is_the_real_one(api: FakeApi, client: PrtraceClient) -> None:
    """Idempotency, routing and scopes are the API handler's own (fake_api.py)."""
    first = client.create_trace(trace_metadata(), idempotency_key="create-1")
    assert client.create_trace(trace_metadata(), idempotency_key="create-1") == first
    with pytest.raises(ValidationFailed) as reused:
        client.create_trace(trace_metadata("another task"), idempotency_key="create-1")
    assert reused.value.problem_type == "idempotency-key-reused"
    with pytest.raises(NotFound) as unrouted:
        client._json("GET", "/v1/nothing-here")
    assert unrouted.value.problem_type == "route-not-found"
    assert len(api.idempotency.records) == 1
