"""Result links: which product exists when, and the reason given when it does not; presigned
GETs name the endpoint clients reach."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit

import boto3
import pytest

from prtrace.adapters.memory import MemoryBlobStore
from prtrace.adapters.s3 import S3BlobStore
from prtrace.adapters.wiring import S3_CONFIG
from prtrace.errors import ResultNotAvailable
from prtrace.records import TraceRecord
from prtrace.results.products import TraceResults
from prtrace.storage_keys import document_key, judge_result_key, qa_report_key

TRACE_ID = "tr_01JD0000000000000000000001"
T0 = "2026-11-26T04:00:00.000Z"
SNAPSHOTS = {"base": {"sha256": "a" * 64}, "final": {"sha256": "b" * 64}}
TRACE = TraceRecord(
    tenant="acme",
    trace_id=TRACE_ID,
    status="complete",
    metadata={},
    created_at=T0,
    updated_at=T0,
    finalize={"expected_chunks": 1, "snapshots": SNAPSHOTS},
    outcome={"qa_skipped": None},
)


@pytest.fixture
def blobs() -> MemoryBlobStore:
    blobs = MemoryBlobStore()
    for key in (document_key, qa_report_key, judge_result_key):
        blobs.objects[key("acme", TRACE_ID)] = b"{}"
    return blobs


def test_stored_products_are_linked(blobs):
    results = TraceResults(blobs, url_ttl_s=120)
    assert results.link(TRACE, "qa_report") == {
        "url": f"memory://{qa_report_key('acme', TRACE_ID)}?expires_in=120",
        "expires_in": 120,
    }


def test_a_timed_out_qa_has_no_report_even_if_one_was_left_behind(blobs):
    trace = replace(TRACE, outcome={"qa_skipped": "timeout"})
    with pytest.raises(ResultNotAvailable, match="did not finish within its time limit") as caught:
        TraceResults(blobs).link(trace, "qa_report")
    assert (caught.value.result, caught.value.status) == ("qa_report", "complete")
    assert TraceResults(blobs).link(trace, "judge_result")["url"].startswith("memory://")


def test_a_trace_without_snapshots_never_has_a_qa_report(blobs):
    trace = replace(TRACE, status="judging", outcome=None, finalize={"expected_chunks": 1})
    with pytest.raises(ResultNotAvailable, match="no workspace snapshots"):
        TraceResults(blobs).link(trace, "qa_report")


def test_a_product_not_stored_yet_says_to_poll():
    trace = replace(TRACE, status="testing", outcome=None)
    with pytest.raises(ResultNotAvailable, match="not produced yet; poll GET /v1/traces/"):
        TraceResults(MemoryBlobStore()).link(trace, "document")


def test_presigned_get_names_the_public_endpoint():
    internal = boto3.client("s3", endpoint_url="http://moto:5000", config=S3_CONFIG)
    public = boto3.client("s3", endpoint_url="http://localhost:4566", config=S3_CONFIG)
    url = S3BlobStore(internal, "prtrace-data", presign_client=public).presign_get(
        "tenants/acme/traces/x/document.json", 60
    )
    parts = urlsplit(url)
    assert parts.netloc == "localhost:4566"
    assert parts.path == "/prtrace-data/tenants/acme/traces/x/document.json"
    assert "X-Amz-Expires=60" in parts.query
