"""The whole pipeline on the local cloud, driven through the HTTP API only: finalize starts
one Step Functions execution per trace, which assembles and verifies the trace, runs the
QA task (the ECS task's entry point, under the local sandbox), judges it (the real OpenAI
client against a local OpenAI-compatible server) and records the outcome.

Only the attacker in the tampering tests touches S3 directly; the execution count is read
from Step Functions to prove "exactly one"."""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from examples.snapshots import TRACE_DIR
from local_cloud.cloud import LocalCloud, LocalCloudInfo
from local_cloud.lambda_runtime import LambdaRuntime
from prtrace.adapters.dynamodb import DynamoTraceStore
from prtrace.assemble.document import TraceDocument
from prtrace.clock import utc_now
from prtrace.judge.rubric import DIMENSION_IDS
from tests.e2e.pipeline_support import (
    TraceClient,
    add_hanging_test,
    break_shared_points,
    trace_variant,
)
from tests.fake_openai import FakeOpenAI, Scripted, answer, completion, fake_openai_server
from tests.local_cloud import aws, make_token, new_tenant

FAIL_TO_PASS = "tests/test_ranges.py::test_merge_keeps_last_interval"
QA_WALL_TIMEOUT_S = 10


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeOpenAI]:
    with fake_openai_server() as fake:
        yield fake


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, llm: FakeOpenAI) -> Iterator[LocalCloudInfo]:
    context = {
        "stage": "local",
        "destroy_data_on_delete": "true",
        "qa_wall_timeout_s": str(QA_WALL_TIMEOUT_S),
        "judge_mode": "openai",
        "judge_openai_base_url": llm.url,
    }
    state_dir = tmp_path_factory.mktemp("pipeline-cloud")
    with LocalCloud(aws_port=0, api_port=0, state_dir=state_dir, context=context) as info:
        # The operator's step after deploying: put the model key in the named secret.
        aws(info, "secretsmanager").create_secret(
            Name="prtrace/openai-api-key", SecretString='{"api_key": "sk-local-e2e"}'
        )
        yield info


@pytest.fixture(autouse=True)
def _fresh_script(llm: FakeOpenAI) -> Iterator[None]:
    llm.script.clear()
    yield
    llm.script.clear()


@pytest.fixture
def client(cloud: LocalCloudInfo) -> TraceClient:
    """A fresh tenant per test: its traces and idempotency keys are its own."""
    tenant = new_tenant()
    return TraceClient(cloud.endpoint, make_token(cloud, tenant, ["ingest", "read"]), tenant)


def _judged_well(llm: FakeOpenAI) -> None:
    llm.push(completion(answer({"correctness": 5})))


def _executions(cloud: LocalCloudInfo, trace_id: str) -> list[dict[str, Any]]:
    sfn = aws(cloud, "stepfunctions")
    arn = cloud.stack.outputs["PipelineStateMachineArn"]
    return [
        e for e in sfn.list_executions(stateMachineArn=arn)["executions"] if e["name"] == trace_id
    ]


def test_the_example_trace_completes_resolved_with_judge_scores(
    client: TraceClient, llm: FakeOpenAI, cloud: LocalCloudInfo
) -> None:
    _judged_well(llm)
    trace_id = client.upload(TRACE_DIR)
    assert client.finalize(trace_id, TRACE_DIR).status_code == 202
    view, seen = client.wait(trace_id)

    assert view["status"] == "complete", view
    assert list(seen)[-1] == "complete"
    assert set(seen) <= {"finalizing", "assembling", "testing", "judging", "complete"}
    outcome = view["outcome"]
    assert outcome["qa"]["verdict"] == "resolved", outcome["qa"]
    assert outcome["qa"]["fail_to_pass"]["ids"] == [FAIL_TO_PASS]
    assert outcome["qa"]["pass_to_fail"]["count"] == 0
    judge = outcome["judge"]
    assert judge["status"] == "ok"
    assert sorted(s["dimension"] for s in judge["scores"]) == sorted(DIMENSION_IDS)
    assert all(s["rationale"] for s in judge["scores"])
    assert outcome["metrics"]["events_by_type"]["test_run"] == 2
    assert outcome["chain"]["length"] == 11

    # The products behind the links are the stored documents themselves.
    document = TraceDocument.model_validate(client.download(trace_id, "document"))
    assert [e.seq for e in document.events] == list(range(11))
    assert document.chain.head == outcome["chain"]["head"]
    report = client.download(trace_id, "qa-report")
    assert report["verdict"] == "resolved"
    result = client.download(trace_id, "judge-result")
    assert result["overall"] == judge["overall"]
    # The model saw the trace (the prompt names the task) exactly once.
    assert len(llm.requests) >= 1
    assert "merge() drops the last interval" in orjson.dumps(llm.requests[-1]).decode()
    assert len(_executions(cloud, trace_id)) == 1


def test_a_fix_that_breaks_another_test_completes_unresolved(
    client: TraceClient, llm: FakeOpenAI, tmp_path: Path
) -> None:
    _judged_well(llm)
    directory = trace_variant(tmp_path / "regression", break_shared_points)
    trace_id = client.upload(directory)
    assert client.finalize(trace_id, directory).status_code == 202
    view, _ = client.wait(trace_id)

    assert view["status"] == "complete", view
    qa = view["outcome"]["qa"]
    assert qa["verdict"] == "unresolved"
    assert FAIL_TO_PASS in qa["fail_to_pass"]["ids"]
    assert "tests/test_ranges.py::test_overlaps_shared_point" in qa["pass_to_fail"]["ids"]
    assert view["outcome"]["judge"]["status"] == "ok"


def test_a_chunk_edited_in_s3_after_upload_is_rejected_naming_the_chunk(
    client: TraceClient, cloud: LocalCloudInfo
) -> None:
    trace_id = client.upload(TRACE_DIR)
    s3 = aws(cloud, "s3")
    bucket = cloud.stack.outputs["DataBucketName"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="tenants/")["Contents"]
    (body_key,) = [
        o["Key"]
        for o in listed
        if trace_id in o["Key"] and "/chunks/" in o["Key"] and "000001" in o["Key"]
    ]
    body = s3.get_object(Bucket=bucket, Key=body_key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=body_key, Body=body.replace(b"merge", b"merg3", 1))

    assert client.finalize(trace_id, TRACE_DIR).status_code == 202
    view, seen = client.wait(trace_id)
    assert view["status"] == "rejected", view
    assert "testing" not in seen  # nothing runs on a trace that does not verify
    reason = view["outcome"]["reason"]
    assert reason["code"] == "chunk_body_mismatch"
    assert reason["chunk_seq"] == 1
    assert "chunk 1" in reason["detail"]
    assert client.http.get(f"/v1/traces/{trace_id}/document").status_code == 409


def test_a_missing_artifact_is_rejected(client: TraceClient, cloud: LocalCloudInfo) -> None:
    trace_id = client.upload(TRACE_DIR)
    diff = (TRACE_DIR / "artifacts" / "fix.diff").read_bytes()
    digest = hashlib.sha256(diff).hexdigest()
    s3 = aws(cloud, "s3")
    bucket = cloud.stack.outputs["DataBucketName"]
    s3.delete_object(
        Bucket=bucket, Key=f"tenants/{client.tenant}/traces/{trace_id}/artifacts/sha256/{digest}"
    )

    assert client.finalize(trace_id, TRACE_DIR).status_code == 202
    view, _ = client.wait(trace_id)
    assert view["status"] == "rejected", view
    reason = view["outcome"]["reason"]
    assert reason["code"] == "artifact_missing"
    assert reason["artifact_sha256"] == digest


def test_a_qa_run_that_times_out_still_completes_with_judge_scores(
    client: TraceClient, llm: FakeOpenAI, tmp_path: Path
) -> None:
    _judged_well(llm)
    directory = trace_variant(tmp_path / "hangs", add_hanging_test)
    trace_id = client.upload(directory)
    assert client.finalize(trace_id, directory).status_code == 202
    view, _ = client.wait(trace_id, timeout_s=180)

    assert view["status"] == "complete", view
    qa = view["outcome"]["qa"]
    assert qa["verdict"] == "error"
    assert qa["error_reason"] == "timeout"
    assert view["outcome"]["judge"]["status"] == "ok"
    assert len(view["outcome"]["judge"]["scores"]) == len(DIMENSION_IDS)


def test_a_model_that_is_down_still_completes_with_judge_unavailable(
    client: TraceClient, llm: FakeOpenAI
) -> None:
    overloaded = Scripted(status=503, body={"error": {"message": "overloaded"}})
    llm.push(*[overloaded] * 50)
    trace_id = client.upload(TRACE_DIR)
    assert client.finalize(trace_id, TRACE_DIR).status_code == 202
    view, _ = client.wait(trace_id)

    assert view["status"] == "complete", view
    assert view["outcome"]["qa"]["verdict"] == "resolved"
    judge = view["outcome"]["judge"]
    assert judge["status"] == "judge_unavailable"
    assert (judge["overall"], judge["scores"]) == (None, [])  # no model score exists
    assert len(judge["stand_in"]["scores"]) == len(DIMENSION_IDS)  # the offline judge's


def test_finalizing_twice_or_concurrently_starts_exactly_one_execution(
    client: TraceClient, llm: FakeOpenAI, cloud: LocalCloudInfo
) -> None:
    _judged_well(llm)
    trace_id = client.upload(TRACE_DIR)
    answers: list[int] = []

    def finalize() -> None:
        answers.append(client.finalize(trace_id, TRACE_DIR).status_code)

    threads = [threading.Thread(target=finalize) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [202] * 6
    view, _ = client.wait(trace_id)
    assert view["status"] == "complete"
    assert client.finalize(trace_id, TRACE_DIR).status_code == 202  # after it ended, too
    assert len(_executions(cloud, trace_id)) == 1


def test_a_trace_without_snapshots_is_judged_without_qa(
    client: TraceClient, llm: FakeOpenAI, tmp_path: Path
) -> None:
    _judged_well(llm)
    directory = tmp_path / "no-snapshots"
    shutil.copytree(TRACE_DIR, directory)
    (directory / "finalize.json").write_text('{"expected_chunks": 3}')
    trace_id = client.upload(directory)
    assert client.finalize(trace_id, directory).status_code == 202
    view, seen = client.wait(trace_id)

    assert view["status"] == "complete", view
    assert "testing" not in seen
    assert view["outcome"]["qa"] is None
    assert view["outcome"]["qa_skipped"] == "no_snapshots"
    assert view["outcome"]["judge"]["status"] == "ok"
    missing = client.http.get(f"/v1/traces/{trace_id}/qa-report")
    assert missing.status_code == 409
    assert "snapshot" in missing.json()["detail"]


def test_an_aborted_execution_still_ends_its_trace(
    client: TraceClient, cloud: LocalCloudInfo, tmp_path: Path
) -> None:
    directory = trace_variant(tmp_path / "aborted", add_hanging_test)
    trace_id = client.upload(directory)
    assert client.finalize(trace_id, directory).status_code == 202
    deadline = time.monotonic() + 60
    while client.trace(trace_id)["status"] != "testing":  # the QA task runs the hanging test
        assert time.monotonic() < deadline, client.trace(trace_id)
        time.sleep(0.1)
    (execution,) = _executions(cloud, trace_id)
    aws(cloud, "stepfunctions").stop_execution(executionArn=execution["executionArn"])

    view, _ = client.wait(trace_id, timeout_s=120)
    assert view["status"] == "failed", view
    assert view["outcome"]["stage"] == "pipeline"
    assert "ABORTED" in view["outcome"]["cause"] or view["outcome"]["error"] == "ExecutionAborted"
    assert [e["status"] for e in _executions(cloud, trace_id)] == ["ABORTED"]


def test_a_trace_whose_pipeline_never_started_is_ended_by_the_sweeper(
    client: TraceClient, cloud: LocalCloudInfo, tmp_path: Path
) -> None:
    """A finalize that stored `finalizing` and crashed before starting the pipeline (and was
    never retried): the hourly sweep, once the pipeline's timeout has passed, ends it."""
    trace_id = client.upload(TRACE_DIR)
    store = DynamoTraceStore(aws(cloud, "dynamodb"), cloud.stack.outputs["TracesTableName"])
    stored = store.get_trace(client.tenant, trace_id)
    assert stored is not None
    store.mark_finalizing(
        client.tenant, trace_id, {"expected_chunks": stored.chunk_count}, utc_now(),
        stored.chunk_count, stored.event_count,
    )  # fmt: skip
    (sweeper,) = [
        physical
        for logical, physical in cloud.stack.physical_ids.items()
        if logical.startswith("PipelineSweeperFunction")
    ]

    def sweep(hours_from_now: float) -> Any:
        at = datetime.now(UTC) + timedelta(hours=hours_from_now)
        event = {"detail-type": "Scheduled Event", "source": "aws.events", "time": at.isoformat()}
        answer = aws(cloud, "lambda").invoke(FunctionName=sweeper, Payload=orjson.dumps(event))
        assert "FunctionError" not in answer, answer["Payload"].read()
        return orjson.loads(answer["Payload"].read())["ended"]

    assert trace_id not in sweep(1)  # its pipeline could still be running
    assert client.trace(trace_id)["status"] == "finalizing"
    assert trace_id in sweep(5)
    view = client.trace(trace_id)
    assert view["status"] == "failed"
    assert (view["outcome"]["stage"], view["outcome"]["error"]) == ("pipeline", "PipelineStuck")
    assert _executions(cloud, trace_id) == []  # nothing ran: the sweep alone ended it


def test_a_record_step_that_fails_once_is_retried_and_the_trace_completes(
    client: TraceClient, llm: FakeOpenAI, cloud: LocalCloudInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    _judged_well(llm)
    real_invoke = LambdaRuntime.invoke_moto_function
    crashed: list[str] = []

    def crash_record_once(self: LambdaRuntime, function: Any, event: Any) -> Any:
        if "PipelineRecordFunction" in function.function_name and not crashed:
            crashed.append(function.function_name)
            error = {
                "errorMessage": "Runtime exited with code -9",
                "errorType": "Runtime.ExitError",
            }
            return orjson.dumps(error).decode(), True, ""
        return real_invoke(self, function, event)

    monkeypatch.setattr(LambdaRuntime, "invoke_moto_function", crash_record_once)
    trace_id = client.upload(TRACE_DIR)
    assert client.finalize(trace_id, TRACE_DIR).status_code == 202
    view, _ = client.wait(trace_id, timeout_s=180)
    assert crashed  # RecordComplete crashed once, and Step Functions ran it again
    assert view["status"] == "complete", view
    assert view["outcome"]["qa"]["verdict"] == "resolved"
