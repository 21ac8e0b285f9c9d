"""The Record Lambda against moto (DynamoDB + S3), with the events the state machine sends:
it reads the QA report and judge result, writes the terminal status and outcome once, and
raises (for Step Functions to catch) on a malformed event or a result that is not stored."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import orjson
import pytest
from moto import mock_aws

from functions.record import handler
from local_cloud.resources import ResourceNames, provision
from prtrace.adapters.dynamodb import DynamoTraceStore
from prtrace.adapters.wiring import BOTO_CONFIG
from prtrace.pipeline.record import InvalidRecordEvent, OutcomeConflict, RecordInputMissing
from prtrace.records import OPEN, TraceRecord
from prtrace.settings import ConfigurationError
from prtrace.storage_keys import qa_report_key
from tests.in_process_gateway import LambdaContext
from tests.pipeline_factories import (
    TRACE_ID,
    complete_event,
    execution_ended,
    failed_event,
    rejected_event,
    stored_results,
)

NAMES = ResourceNames()
T0 = "2026-11-26T04:00:00.000Z"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoTraceStore]:
    monkeypatch.setenv("PRTRACE_TRACES_TABLE", NAMES.traces_table)
    monkeypatch.setenv("PRTRACE_BUCKET", NAMES.bucket)
    with mock_aws():
        provision(NAMES)
        store = DynamoTraceStore(boto3.client("dynamodb", config=BOTO_CONFIG), NAMES.traces_table)
        store.create_trace(
            TraceRecord(
                tenant="acme",
                trace_id=TRACE_ID,
                status=OPEN,
                metadata={"task": {"title": "t"}},
                created_at=T0,
                updated_at=T0,
            )
        )
        store.mark_finalizing("acme", TRACE_ID, {"expected_chunks": 3}, T0, 0, 0)
        handler.reset()
        yield store
        handler.reset()


def put_results(objects: dict[str, bytes]) -> None:
    s3 = boto3.client("s3")
    for key, body in objects.items():
        s3.put_object(Bucket=NAMES.bucket, Key=key, Body=body)


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    return handler.lambda_handler(event, LambdaContext())


def test_complete_is_recorded_with_the_outcome(aws):
    put_results(stored_results())
    assert invoke(complete_event()) == {"status": "complete", "trace_id": TRACE_ID}
    view = aws.get_trace("acme", TRACE_ID).public()
    assert view["status"] == "complete"
    assert view["outcome"]["qa"]["verdict"] == "resolved"
    assert view["outcome"]["judge"]["overall"] == 3.75
    assert len(view["outcome"]["judge"]["scores"]) == 6
    assert view["links"]["judge_result"] == f"/v1/traces/{TRACE_ID}/judge-result"


def test_rejected_and_a_retry_of_it(aws):
    assert invoke(rejected_event())["status"] == "rejected"
    stored = aws.get_trace("acme", TRACE_ID)
    assert invoke(rejected_event())["status"] == "rejected"  # Step Functions retried
    assert aws.get_trace("acme", TRACE_ID) == stored
    assert stored.outcome["reason"]["code"] == "chunk_mac_invalid"


def test_failure_after_an_end_is_refused_and_changes_nothing(aws):
    invoke(rejected_event())
    stored = aws.get_trace("acme", TRACE_ID)
    with pytest.raises(OutcomeConflict, match="it is rejected"):
        invoke(failed_event())
    assert aws.get_trace("acme", TRACE_ID) == stored


def test_failed_without_a_cause(aws):
    assert invoke(failed_event() | {"cause": None})["status"] == "failed"
    assert aws.get_trace("acme", TRACE_ID).outcome["cause"] == ""


def test_a_missing_qa_report_raises_and_the_trace_is_untouched(aws):
    objects = stored_results()
    del objects[qa_report_key("acme", TRACE_ID)]
    put_results(objects)
    with pytest.raises(RecordInputMissing, match=r"QA report .* is not stored"):
        invoke(complete_event())
    assert aws.get_trace("acme", TRACE_ID).status == "finalizing"


def test_a_malformed_event_raises_a_clear_error(aws):
    with pytest.raises(InvalidRecordEvent, match="/stage: Input should be"):
        invoke(failed_event() | {"stage": "deploy"})


def test_missing_configuration_is_named(aws, monkeypatch):
    monkeypatch.delenv("PRTRACE_BUCKET")
    handler.reset()
    with pytest.raises(ConfigurationError, match="PRTRACE_BUCKET"):
        invoke(failed_event())


# ---- executions that ended without recording (the execution-end rule) ----------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("TIMED_OUT", "States.Timeout"),
        ("ABORTED", "ExecutionAborted"),
        ("FAILED", "ExecutionFailed"),
    ],
)
def test_an_execution_that_ended_badly_fails_the_trace_it_left_in_progress(aws, status, error):
    assert invoke(execution_ended(status)) == {"status": "failed", "trace_id": TRACE_ID}
    outcome = aws.get_trace("acme", TRACE_ID).public()["outcome"]
    assert (outcome["stage"], outcome["error"]) == ("pipeline", error)
    assert status in outcome["cause"]
    # EventBridge may deliver it again: the same answer, nothing rewritten.
    assert invoke(execution_ended(status)) == {"status": "failed", "trace_id": TRACE_ID}
    assert aws.get_trace("acme", TRACE_ID).public()["outcome"] == outcome


def test_the_execution_s_own_error_and_cause_are_kept(aws):
    invoke(execution_ended("FAILED", error="Lambda.Unknown", cause="Record ran out of memory"))
    outcome = aws.get_trace("acme", TRACE_ID).public()["outcome"]
    assert (outcome["error"], outcome["cause"]) == ("Lambda.Unknown", "Record ran out of memory")


@pytest.mark.parametrize("first", [complete_event, rejected_event, failed_event])
def test_a_trace_its_own_record_step_ended_is_left_as_it_is(aws, first):
    put_results(stored_results())
    ended = invoke(first())
    before = aws.get_trace("acme", TRACE_ID).public()
    assert invoke(execution_ended("FAILED")) == ended
    assert aws.get_trace("acme", TRACE_ID).public() == before


def test_an_execution_end_for_a_trace_that_does_not_exist_raises(aws):
    with pytest.raises(OutcomeConflict):
        invoke(execution_ended(tenant="other"))


@pytest.mark.parametrize(
    "spoil",
    [
        lambda e: e["detail"].update(input="not json"),
        lambda e: e["detail"].update(input='{"tenant": "acme"}'),
        lambda e: e["detail"].update(status="SUCCEEDED"),
        lambda e: e["detail"].update(input='{"tenant": "ACME!", "trace_id": "x"}'),
    ],
)
def test_a_malformed_execution_end_is_refused(aws, spoil):
    event = execution_ended()
    spoil(event)
    with pytest.raises(InvalidRecordEvent):
        invoke(event)
    assert aws.get_trace("acme", TRACE_ID).status == "finalizing"


def _verdict_metrics(captured: str) -> list[dict[str, Any]]:
    records = [orjson.loads(line) for line in captured.splitlines() if '"_aws"' in line]
    return [r for r in records if "QaVerdict" in r]


def test_a_completed_trace_counts_its_qa_verdict(aws, capsys):
    put_results(stored_results())
    capsys.readouterr()
    invoke(complete_event())
    (record,) = _verdict_metrics(capsys.readouterr().out)
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "prtrace"
    assert directive["Metrics"] == [{"Name": "QaVerdict", "Unit": "Count"}]
    assert sorted(directive["Dimensions"][0]) == ["service", "verdict"]
    assert (record["service"], record["verdict"]) == ("prtrace-record", "resolved")
    assert record["QaVerdict"] == [1.0]  # Powertools writes values as lists


def test_traces_that_did_not_complete_count_no_verdict(aws, capsys):
    capsys.readouterr()
    invoke(rejected_event())
    assert _verdict_metrics(capsys.readouterr().out) == []
