"""Finalize starts the trace's pipeline exactly once: on the first finalize, again (harmlessly)
on a retry while the trace is still `finalizing` (which heals a crash between the two), and
never twice however many finalizes race. The Step Functions adapter against moto."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import orjson
import pytest
from moto import mock_aws

from prtrace.adapters.memory import MemoryBlobStore, MemoryPipelineStarter, MemoryTraceStore
from prtrace.adapters.stepfunctions import StepFunctionsPipelineStarter
from prtrace.adapters.wiring import BOTO_CONFIG
from prtrace.errors import PipelineNotStarted, TraceNotOpen
from prtrace.ingest.service import IngestService
from prtrace.integrity import KeyRing
from prtrace.ports import PipelineUnavailable
from prtrace.schema import TraceMetadata
from tests.factories import chunk_body, trace_metadata

RING = KeyRing(current_id="k1", keys={"k1": b"s" * 32})
NOW = "2026-11-26T04:00:00.000Z"


@pytest.fixture
def setup() -> tuple[MemoryTraceStore, MemoryPipelineStarter, IngestService, str]:
    store, starter = MemoryTraceStore(), MemoryPipelineStarter()
    service = IngestService(store, MemoryBlobStore(), lambda: RING, pipeline=starter)
    trace = service.create_trace("acme", TraceMetadata.model_validate(trace_metadata()))
    service.put_chunk("acme", trace.trace_id, 0, chunk_body(0, 3))
    return store, starter, service, trace.trace_id


def test_finalize_starts_the_pipeline_with_tenant_and_trace(setup):
    _, starter, service, trace_id = setup
    assert service.finalize("acme", trace_id, 1).status == "finalizing"
    assert starter.executions == {trace_id: {"tenant": "acme", "trace_id": trace_id}}


def test_a_failed_finalize_starts_nothing(setup):
    _, starter, service, trace_id = setup
    with pytest.raises(Exception, match="missing chunk"):
        service.finalize("acme", trace_id, 2)
    assert starter.calls == []


def test_concurrent_finalizes_start_one_execution(setup):
    store, starter, service, trace_id = setup
    barrier = threading.Barrier(8)
    answers: list[str] = []
    errors: list[BaseException] = []

    def finalize() -> None:
        barrier.wait()
        try:
            answers.append(service.finalize("acme", trace_id, 1).status)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=finalize) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert answers == ["finalizing"] * 8
    assert len(starter.executions) == 1  # every finalize asked; one execution by name
    assert len(starter.calls) == 8
    assert store.get_trace("acme", trace_id).status == "finalizing"


def test_a_start_that_failed_is_healed_by_the_retry(setup):
    store, starter, service, trace_id = setup
    starter.unavailable = True
    with pytest.raises(PipelineNotStarted, match="retry the same finalize"):
        service.finalize("acme", trace_id, 1)
    # The finalize itself is stored; only the start is missing.
    assert store.get_trace("acme", trace_id).status == "finalizing"
    assert starter.executions == {}
    starter.unavailable = False
    assert service.finalize("acme", trace_id, 1).status == "finalizing"
    assert list(starter.executions) == [trace_id]


@pytest.mark.parametrize(
    "status", ["assembling", "testing", "judging", "complete", "rejected", "failed"]
)
def test_a_retried_finalize_answers_in_every_later_status_without_restarting(setup, status):
    store, starter, service, trace_id = setup
    first = service.finalize("acme", trace_id, 1)
    store.set_status("acme", trace_id, status, NOW)
    again = service.finalize("acme", trace_id, 1)
    assert (again.status, again.finalize) == (status, first.finalize)
    assert len(starter.calls) == 1  # the pipeline moved the trace on: it is running or ran


def test_a_different_finalize_is_refused_in_every_later_status(setup):
    store, _, service, trace_id = setup
    service.finalize("acme", trace_id, 1)
    for status in ("finalizing", "judging", "complete"):
        store.set_status("acme", trace_id, status, NOW)
        with pytest.raises(TraceNotOpen):
            service.finalize("acme", trace_id, 2)


def test_without_a_pipeline_finalize_starts_nothing():
    service = IngestService(MemoryTraceStore(), MemoryBlobStore(), lambda: RING)
    trace = service.create_trace("acme", TraceMetadata.model_validate(trace_metadata()))
    service.put_chunk("acme", trace.trace_id, 0, chunk_body(0, 3))
    assert service.finalize("acme", trace.trace_id, 1).status == "finalizing"


# ---- Step Functions adapter -----------------------------------------------------------

DEFINITION = orjson.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}).decode()


@pytest.fixture
def sfn() -> Iterator[tuple[Any, str]]:
    with mock_aws():
        client = boto3.client("stepfunctions", config=BOTO_CONFIG)
        arn = client.create_state_machine(
            name="prtrace-trace-pipeline",
            definition=DEFINITION,
            roleArn="arn:aws:iam::123456789012:role/prtrace-pipeline",
        )["stateMachineArn"]
        yield client, arn


def test_step_functions_starts_one_execution_named_after_the_trace(sfn):
    client, arn = sfn
    starter = StepFunctionsPipelineStarter(client, arn)
    for _ in range(3):
        starter.start("acme", "tr_01JD0000000000000000000001")
    executions = client.list_executions(stateMachineArn=arn)["executions"]
    assert [e["name"] for e in executions] == ["tr_01JD0000000000000000000001"]
    described = client.describe_execution(executionArn=executions[0]["executionArn"])
    assert orjson.loads(described["input"]) == {
        "tenant": "acme",
        "trace_id": "tr_01JD0000000000000000000001",
    }


def test_execution_already_exists_is_success(sfn):
    client, arn = sfn
    # Same name, other input: Step Functions answers ExecutionAlreadyExists.
    client.start_execution(stateMachineArn=arn, name="tr_01JD0000000000000000000002", input="{}")
    StepFunctionsPipelineStarter(client, arn).start("acme", "tr_01JD0000000000000000000002")
    assert len(client.list_executions(stateMachineArn=arn)["executions"]) == 1


def test_a_missing_state_machine_is_pipeline_unavailable(sfn):
    client, arn = sfn
    starter = StepFunctionsPipelineStarter(client, arn + "-gone")
    with pytest.raises(PipelineUnavailable, match="not started"):
        starter.start("acme", "tr_01JD0000000000000000000003")
