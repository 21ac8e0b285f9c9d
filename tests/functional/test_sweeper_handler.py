"""The sweeper Lambda against moto: traces the pipeline left in progress longer than any
execution may run are ended as failed (stage `pipeline`), through the in-pipeline index;
nothing younger, and nothing already ended, is touched."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.sweeper import handler
from local_cloud.resources import ResourceNames, provision
from prtrace.adapters.dynamodb import DynamoTraceStore
from prtrace.adapters.wiring import BOTO_CONFIG
from prtrace.pipeline.outcome import failed_outcome
from prtrace.records import OPEN, TraceRecord
from tests.in_process_gateway import LambdaContext

NAMES = ResourceNames()
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
STUCK_AFTER_S = 4 * 3600


def ago(hours: float) -> str:
    moment = NOW - timedelta(hours=hours)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoTraceStore]:
    monkeypatch.setenv("PRTRACE_TRACES_TABLE", NAMES.traces_table)
    monkeypatch.setenv("PRTRACE_BUCKET", NAMES.bucket)
    monkeypatch.setenv("PRTRACE_STUCK_AFTER_S", str(STUCK_AFTER_S))
    with mock_aws():
        provision(NAMES)
        handler.reset()
        yield DynamoTraceStore(boto3.client("dynamodb", config=BOTO_CONFIG), NAMES.traces_table)
        handler.reset()


def finalized(
    store: DynamoTraceStore, trace_id: str, hours_ago: float, tenant: str = "acme"
) -> None:
    store.create_trace(
        TraceRecord(
            tenant=tenant, trace_id=trace_id, status=OPEN, metadata={"task": {"title": "t"}},
            created_at=ago(hours_ago + 1), updated_at=ago(hours_ago + 1),
        )
    )  # fmt: skip
    store.mark_finalizing(tenant, trace_id, {"expected_chunks": 0}, ago(hours_ago), 0, 0)


def set_status(trace_id: str, status: str, tenant: str = "acme") -> None:
    """What the state machine's Mark* states write (status and time only)."""
    boto3.client("dynamodb").update_item(
        TableName=NAMES.traces_table,
        Key={"pk": {"S": f"T#{tenant}"}, "sk": {"S": f"TRACE#{trace_id}"}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": status}},
    )


def sweep(at: datetime = NOW) -> dict[str, Any]:
    event = {"detail-type": "Scheduled Event", "source": "aws.events", "time": at.isoformat()}
    return handler.lambda_handler(event, LambdaContext())


def test_traces_left_in_the_pipeline_too_long_are_ended(store: DynamoTraceStore) -> None:
    stuck_finalizing, stuck_testing = (
        "tr_01JD00000000000000000000S1",
        "tr_01JD00000000000000000000S2",
    )
    young, ended = "tr_01JD00000000000000000000Y1", "tr_01JD00000000000000000000E1"
    finalized(store, stuck_finalizing, hours_ago=30)  # its pipeline never started
    finalized(store, stuck_testing, hours_ago=5)
    set_status(stuck_testing, "testing")
    finalized(store, young, hours_ago=3)  # may still be running
    finalized(store, ended, hours_ago=6)
    store.record_outcome("acme", ended, "failed", failed_outcome("qa", "x", "", ago(5)), ago(5))

    assert sorted(sweep()["ended"]) == sorted([stuck_finalizing, stuck_testing])
    for trace_id, status in ((stuck_finalizing, "finalizing"), (stuck_testing, "testing")):
        trace = store.get_trace("acme", trace_id)
        assert trace is not None
        assert trace.status == "failed"
        assert trace.outcome is not None
        assert (trace.outcome["stage"], trace.outcome["error"]) == ("pipeline", "PipelineStuck")
        assert f"still {status} 4 h after" in trace.outcome["cause"]
    assert store.get_trace("acme", young).status == "finalizing"  # type: ignore[union-attr]
    assert store.get_trace("acme", ended).outcome["stage"] == "qa"  # type: ignore[union-attr,index]
    # Ended traces leave the index: the next sweep finds nothing, and rewrites nothing.
    assert sweep()["ended"] == []
    # The young one is swept once it, too, has been in the pipeline too long.
    assert sweep(NOW + timedelta(hours=2))["ended"] == [young]


def test_a_sweep_takes_every_tenant(store: DynamoTraceStore) -> None:
    finalized(store, "tr_01JD00000000000000000000T1", hours_ago=8, tenant="acme")
    finalized(store, "tr_01JD00000000000000000000T2", hours_ago=9, tenant="globex")
    assert sweep()["ended"] == ["tr_01JD00000000000000000000T2", "tr_01JD00000000000000000000T1"]


def test_an_unreadable_schedule_time_sweeps_as_of_now(store: DynamoTraceStore) -> None:
    finalized(store, "tr_01JD00000000000000000000W1", hours_ago=0)  # NOW: days before today
    assert sweep(NOW)["ended"] == []
    answer = handler.lambda_handler({"time": "not a time"}, LambdaContext())
    assert answer == {"ended": ["tr_01JD00000000000000000000W1"]}
