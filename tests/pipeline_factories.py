"""Step outputs and Record events as the state machine passes them (see prtrace.pipeline.record)."""

from __future__ import annotations

from typing import Any

import orjson

from prtrace.judge.result import DimensionScore, JudgeResult
from prtrace.judge.rubric import DIMENSION_IDS
from prtrace.storage_keys import document_key, judge_result_key, qa_report_key
from tests.judge_factories import qa_report

TRACE_ID = "tr_01JD0000000000000000000001"
CHAIN_HEAD = "ab" * 32


def assembled(
    tenant: str = "acme", trace_id: str = TRACE_ID, has_snapshots: bool = True
) -> dict[str, Any]:
    """The Assemble step's output for a trace it accepted."""
    return {
        "outcome": "assembled",
        "document_key": document_key(tenant, trace_id),
        "qa_report_key": qa_report_key(tenant, trace_id),
        "judge_result_key": judge_result_key(tenant, trace_id),
        "has_snapshots": has_snapshots,
        "summary": {
            "event_count": 12,
            "chunk_count": 3,
            "chain": {"key_id": "k1", "head": CHAIN_HEAD, "length": 12},
            "metrics": {
                "event_count": 12,
                "events_by_type": {"file_edit": 4, "cmd_run": 2, "test_run": 3},
                "duration_ms": 600_000,
                "time_to_green_ms": 420_000,
                "files_touched": 2,
            },
        },
    }


def judge_result(trace_id: str = TRACE_ID, **fields: Any) -> JudgeResult:
    scores = [
        DimensionScore(
            dimension=dimension,  # type: ignore[arg-type]
            score=4,
            rationale=f"{dimension}: the failing test was reproduced, then fixed (e3).",
            cited_event_ids=["e3"],
        )
        for dimension in DIMENSION_IDS
    ]
    values: dict[str, Any] = {
        "trace_id": trace_id,
        "judge": "offline-heuristic v1",
        "rubric_version": "v1",
        "status": "ok",
        "overall": 3.75,
        "scores": scores,
        "qa_verdict": "resolved",
        "summary": "A disciplined fix.",
    }
    return JudgeResult.model_validate(values | fields)


def complete_event(
    tenant: str = "acme",
    trace_id: str = TRACE_ID,
    skipped: str | None = None,
    has_snapshots: bool = True,
) -> dict[str, Any]:
    report_key = None if skipped else qa_report_key(tenant, trace_id)
    return {
        "tenant": tenant,
        "trace_id": trace_id,
        "status": "complete",
        "assembled": assembled(tenant, trace_id, has_snapshots),
        "qa": {"report_key": report_key, "skipped": skipped},
        "judge_result_key": judge_result_key(tenant, trace_id),
    }


def rejected_event(tenant: str = "acme", trace_id: str = TRACE_ID) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "trace_id": trace_id,
        "status": "rejected",
        "reason": {
            "code": "chunk_mac_invalid",
            "detail": "chunk 1 does not verify: its MAC does not match the stored body",
            "chunk_seq": 1,
            "event_seq": None,
            "event_id": None,
            "artifact_sha256": None,
        },
    }


def failed_event(
    tenant: str = "acme", trace_id: str = TRACE_ID, cause: str = "boom"
) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "trace_id": trace_id,
        "status": "failed",
        "stage": "judge",
        "error": "Lambda.ServiceException",
        "cause": cause,
    }


def stored_results(tenant: str = "acme", trace_id: str = TRACE_ID) -> dict[str, bytes]:
    """The QA report and judge result a complete event names, by key."""
    return {
        qa_report_key(tenant, trace_id): qa_report("resolved", trace_id=trace_id)
        .model_dump_json()
        .encode(),
        judge_result_key(tenant, trace_id): judge_result(trace_id).model_dump_json().encode(),
    }


def execution_ended(
    status: str = "TIMED_OUT",
    tenant: str = "acme",
    trace_id: str = TRACE_ID,
    error: str | None = None,
    cause: str | None = None,
) -> dict[str, Any]:
    """EventBridge's "Step Functions Execution Status Change" for a pipeline execution."""
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:prtrace-pipeline"
    arn = f"{machine.replace(':stateMachine:', ':execution:')}:{trace_id}"
    return {
        "version": "0",
        "id": "2c3a5b8e-0000-4000-8000-000000000001",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-11-26T07:00:00Z",
        "region": "us-east-1",
        "resources": [arn],
        "detail": {
            "executionArn": arn,
            "stateMachineArn": machine,
            "name": trace_id,
            "status": status,
            "startDate": 1764136800000,
            "stopDate": 1764147600000,
            "input": orjson.dumps({"tenant": tenant, "trace_id": trace_id}).decode(),
            "output": None,
            "error": error,
            "cause": cause,
        },
    }
