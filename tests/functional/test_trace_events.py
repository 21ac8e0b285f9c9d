"""`GET /v1/traces/{id}/events`: an assembled trace's events by seq range, read from the
stored chunk bodies (the viewer pages through a trace with it)."""

from __future__ import annotations

import boto3
import orjson
import pytest

from prtrace.canonical import canonical_json
from prtrace.storage_keys import document_key
from tests.factories import events
from tests.functional.conftest import NAMES, Client
from tests.functional.test_pipeline_api import (
    finalized_trace,
    problem_type,
    run_pipeline_to_complete,
    set_status,
    store,
)
from tests.functional.test_pipeline_api import state_machine as state_machine

# Finalize starts the pipeline, so a state machine must exist.
pytestmark = pytest.mark.usefixtures("state_machine")

# finalized_trace stores 2 chunks of 3 events: seqs 0-2 and 3-5.
ALL = [orjson.loads(canonical_json(e)) for e in events(0, 6)]


def page(client: Client, trace_id: str, query: str = "") -> dict:
    response = client.call("GET", f"/v1/traces/{trace_id}/events{query}")
    assert response.status == 200, response.body
    return response.json()


def test_a_complete_trace_pages_through_all_its_events_in_order(client):
    trace_id = finalized_trace(client)
    run_pipeline_to_complete(trace_id)
    seen, query = [], "?limit=2"
    while True:
        body = page(client, trace_id, query)
        assert body["trace_id"] == trace_id
        assert body["event_count"] == 6
        seen.extend(body["events"])
        if body["next_from_seq"] is None:
            break
        query = f"?limit=2&from_seq={body['next_from_seq']}"
    assert seen == ALL  # as stored (canonical), across the chunk boundary, each once


def test_a_range_that_spans_two_chunks(client):
    trace_id = finalized_trace(client)
    run_pipeline_to_complete(trace_id)
    body = page(client, trace_id, "?from_seq=2&limit=3")
    assert [e["seq"] for e in body["events"]] == [2, 3, 4]
    assert body["from_seq"] == 2
    assert body["next_from_seq"] == 5
    last = page(client, trace_id, "?from_seq=5&limit=100")
    assert [e["seq"] for e in last["events"]] == [5]
    assert last["next_from_seq"] is None
    assert page(client, trace_id, "?from_seq=6")["events"] == []  # the end: empty, not an error


def test_the_default_page_is_the_first_events(client):
    trace_id = finalized_trace(client)
    run_pipeline_to_complete(trace_id)
    body = page(client, trace_id)
    assert [e["event_id"] for e in body["events"]] == [e["event_id"] for e in ALL]


@pytest.mark.parametrize(
    ("query", "pointer"),
    [
        ("?from_seq=7", "/query/from_seq"),
        ("?limit=0", "/query/limit"),
        ("?limit=501", "/query/limit"),
        ("?from_seq=-1", "/query/from_seq"),
    ],
)
def test_bad_ranges_are_422_naming_the_parameter(client, query, pointer):
    trace_id = finalized_trace(client)
    run_pipeline_to_complete(trace_id)
    response = client.call("GET", f"/v1/traces/{trace_id}/events{query}")
    assert response.status == 422, response.body
    assert problem_type(response) == "validation-error"
    assert pointer in {error["pointer"] for error in response.json()["errors"]}


@pytest.mark.parametrize("status", [None, "assembling"])
def test_a_trace_that_is_not_assembled_is_409(client, status):
    trace_id = finalized_trace(client)
    if status:
        set_status(trace_id, status)
    response = client.call("GET", f"/v1/traces/{trace_id}/events")
    assert response.status == 409
    assert problem_type(response) == "result-not-available"
    assert "document" in response.json()["detail"]


def test_a_trace_being_tested_serves_its_events_once_its_document_is_stored(client):
    trace_id = finalized_trace(client)
    store(document_key("acme", trace_id), b"{}")
    set_status(trace_id, "testing")
    assert len(page(client, trace_id)["events"]) == 6


def test_another_tenants_trace_is_404(client, other_tenant):
    trace_id = finalized_trace(client)
    run_pipeline_to_complete(trace_id)
    response = other_tenant.call("GET", f"/v1/traces/{trace_id}/events")
    assert response.status == 404
    assert problem_type(response) == "trace-not-found"


def test_a_chunk_body_that_no_longer_matches_its_digest_is_never_served(client):
    trace_id = finalized_trace(client)
    run_pipeline_to_complete(trace_id)
    s3 = boto3.client("s3")
    prefix = f"tenants/acme/traces/{trace_id}/chunks/"
    key = s3.list_objects_v2(Bucket=NAMES.bucket, Prefix=prefix)["Contents"][0]["Key"]
    s3.put_object(Bucket=NAMES.bucket, Key=key, Body=b'{"events":[]}')  # tampered
    response = client.call("GET", f"/v1/traces/{trace_id}/events")
    assert response.status == 500
    assert problem_type(response) == "internal-error"
