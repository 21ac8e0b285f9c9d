"""`record_outcome` on both trace stores (memory and DynamoDB under moto): a terminal status
is written once, only after finalize and before any other end; a retry of the same write
gets the stored record back; nothing recorded is ever overwritten."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local_cloud.resources import ResourceNames, provision
from prtrace.adapters.dynamodb import DynamoTraceStore
from prtrace.adapters.memory import MemoryTraceStore
from prtrace.adapters.wiring import BOTO_CONFIG
from prtrace.ports import ConditionFailed
from prtrace.records import OPEN, TraceRecord

NAMES = ResourceNames()
TRACE_ID = "tr_01JD0000000000000000000001"
T0 = "2026-11-26T04:00:00.000Z"
T1 = "2026-11-26T04:05:00.000Z"
T2 = "2026-11-26T04:09:00.000Z"
COMPLETE = {
    "qa": {
        "verdict": "resolved",
        "fail_to_pass": {"count": 1, "ids": ["t::a"], "truncated": False},
    },
    "judge": {"overall": 3.75, "scores": [{"dimension": "diagnosis", "score": 4}]},
    "recorded_at": T1,
}
FAILED = {"stage": "qa", "error": "States.Timeout", "cause": "", "recorded_at": T2}


class Harness:
    """A store plus the state machine's own status writes on its item."""

    def __init__(self, store: Any, set_status: Any) -> None:
        self.store = store
        self.set_status = set_status

    def finalized(self, tenant: str = "acme") -> None:
        self.store.create_trace(
            TraceRecord(
                tenant=tenant,
                trace_id=TRACE_ID,
                status=OPEN,
                metadata={"task": {"title": "t"}},
                created_at=T0,
                updated_at=T0,
            )
        )
        self.store.mark_finalizing(tenant, TRACE_ID, {"expected_chunks": 1}, T0, 0, 0)


def _dynamo_status(db: Any) -> Any:
    def set_status(tenant: str, trace_id: str, status: str, now: str) -> None:
        # What the state machine's dynamodb:updateItem states do (same attribute layout).
        db.update_item(
            TableName=NAMES.traces_table,
            Key={"pk": {"S": f"T#{tenant}"}, "sk": {"S": f"TRACE#{trace_id}"}},
            UpdateExpression="SET #status = :status, updated_at = :now",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":status": {"S": status}, ":now": {"S": now}},
        )

    return set_status


@pytest.fixture(params=["memory", "dynamodb"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "memory":
        store = MemoryTraceStore()
        yield Harness(store, store.set_status)
        return
    with mock_aws():
        provision(NAMES)
        db = boto3.client("dynamodb", config=BOTO_CONFIG)
        yield Harness(DynamoTraceStore(db, NAMES.traces_table), _dynamo_status(db))


@pytest.mark.parametrize("progress", [None, "assembling", "testing", "judging"])
def test_outcome_is_recorded_from_every_pipeline_status(harness, progress):
    harness.finalized()
    if progress:
        harness.set_status("acme", TRACE_ID, progress, T0)
    recorded = harness.store.record_outcome("acme", TRACE_ID, "complete", COMPLETE, T1)
    assert (recorded.status, recorded.outcome, recorded.updated_at) == ("complete", COMPLETE, T1)
    stored = harness.store.get_trace("acme", TRACE_ID)
    assert stored == recorded
    assert stored.outcome["judge"]["overall"] == 3.75  # a float survives the round trip
    assert stored.finalize == {"expected_chunks": 1}  # the rest of the item is untouched


def test_a_retry_of_the_same_end_returns_what_is_stored(harness):
    harness.finalized()
    first = harness.store.record_outcome("acme", TRACE_ID, "complete", COMPLETE, T1)
    again = harness.store.record_outcome(
        "acme", TRACE_ID, "complete", COMPLETE | {"recorded_at": T2}, T2
    )
    assert again == first
    assert harness.store.get_trace("acme", TRACE_ID).updated_at == T1


@pytest.mark.parametrize(("first", "then"), [("complete", "failed"), ("failed", "rejected")])
def test_another_end_never_overwrites_a_recorded_one(harness, first, then):
    harness.finalized()
    recorded = harness.store.record_outcome("acme", TRACE_ID, first, FAILED, T1)
    with pytest.raises(ConditionFailed):
        harness.store.record_outcome("acme", TRACE_ID, then, COMPLETE, T2)
    assert harness.store.get_trace("acme", TRACE_ID) == recorded


def test_an_open_trace_cannot_end(harness):
    harness.store.create_trace(
        TraceRecord(
            tenant="acme", trace_id=TRACE_ID, status=OPEN, metadata={}, created_at=T0, updated_at=T0
        )
    )
    with pytest.raises(ConditionFailed):
        harness.store.record_outcome("acme", TRACE_ID, "failed", FAILED, T1)
    assert harness.store.get_trace("acme", TRACE_ID).status == OPEN


def test_a_missing_or_other_tenants_trace_cannot_end(harness):
    harness.finalized(tenant="globex")
    with pytest.raises(ConditionFailed):
        harness.store.record_outcome("acme", TRACE_ID, "failed", FAILED, T1)
    assert harness.store.get_trace("acme", TRACE_ID) is None  # no item was created
    assert harness.store.get_trace("globex", TRACE_ID).status == "finalizing"


def test_finalized_traces_are_listed_as_in_the_pipeline_until_they_end(harness):
    assert harness.store.in_pipeline_since_before(T2, 10) == []
    harness.finalized()
    harness.set_status("acme", TRACE_ID, "testing", T1)  # the pipeline's own writes keep it
    assert harness.store.in_pipeline_since_before(T0, 10) == []  # finalized at T0, not before
    assert harness.store.in_pipeline_since_before(T1, 10) == [("acme", TRACE_ID)]
    harness.store.record_outcome("acme", TRACE_ID, "failed", FAILED, T2)
    assert harness.store.in_pipeline_since_before(T2, 10) == []
