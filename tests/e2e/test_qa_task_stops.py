"""How the pipeline treats a QA task that ECS stops, on the local cloud: the task is run by
an executor that plays each way a Fargate task ends, the local ECS stops it with ECS's stop
code and reasons, and Step Functions' `runTask.sync` fails it as AWS does.

A task whose container ran and exited non-zero, or was killed for its memory use, is the
repository's outcome: it runs exactly once and the trace completes, judged without a QA
report, saying why. A task that never started is infrastructure: it is started twice more
(10 s, then 30 s later), then the trace fails in QA naming ECS's reason."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from examples.snapshots import TRACE_DIR
from local_cloud.cloud import LocalCloud, LocalCloudInfo
from local_cloud.ecs import ContainerExit, ContainerRun, ContainerStartFailed
from tests.e2e.pipeline_support import TraceClient
from tests.local_cloud import make_token, new_tenant

CANNOT_PULL = "CannotPullContainerError: pull image manifest has been retried 5 time(s)"


class ScriptedTasks:
    """Ends each QA task the way the running test asks (the first `failed_starts` starts of
    each trace fail to start), and remembers what it was given."""

    def __init__(self) -> None:
        self.ending: int | ContainerExit = 0
        self.failed_starts = 0
        self.runs: list[ContainerRun] = []
        self._lock = threading.Lock()

    def run(self, container: ContainerRun) -> int | ContainerExit:
        with self._lock:
            self.runs.append(container)
            starts = len(self.runs_of(container.environment.get("PRTRACE_TRACE_ID", "")))
        if starts <= self.failed_starts:
            raise ContainerStartFailed(CANNOT_PULL)
        return self.ending

    def runs_of(self, trace_id: str) -> list[ContainerRun]:
        return [r for r in self.runs if r.environment.get("PRTRACE_TRACE_ID") == trace_id]


@pytest.fixture(scope="module")
def tasks() -> ScriptedTasks:
    return ScriptedTasks()


@pytest.fixture(scope="module")
def cloud(
    tmp_path_factory: pytest.TempPathFactory, tasks: ScriptedTasks
) -> Iterator[LocalCloudInfo]:
    context = {"stage": "local", "destroy_data_on_delete": "true", "judge_mode": "offline"}
    state_dir = tmp_path_factory.mktemp("qa-stops-cloud")
    with LocalCloud(
        aws_port=0, api_port=0, state_dir=state_dir, context=context, ecs_executor=tasks
    ) as info:
        yield info


@pytest.fixture
def client(cloud: LocalCloudInfo) -> TraceClient:
    tenant = new_tenant()
    return TraceClient(cloud.endpoint, make_token(cloud, tenant, ["ingest", "read"]), tenant)


@pytest.fixture(autouse=True)
def _runs_normally(tasks: ScriptedTasks) -> None:
    tasks.ending, tasks.failed_starts = 0, 0


def _finalized(client: TraceClient) -> str:
    trace_id = client.upload(TRACE_DIR)
    assert client.finalize(trace_id, TRACE_DIR).status_code == 202
    return trace_id


def _judged_without_qa(view: dict[str, Any]) -> dict[str, Any]:
    assert view["status"] == "complete", view
    assert view["outcome"]["judge"]["status"] == "ok"
    assert view["links"]["qa_report"] is None
    qa: dict[str, Any] = view["outcome"]["qa"]
    assert qa["verdict"] == "error"
    return qa


def test_a_qa_task_that_exits_non_zero_runs_once_and_the_trace_is_judged(
    client: TraceClient, tasks: ScriptedTasks
) -> None:
    tasks.ending = 3
    trace_id = _finalized(client)
    view, seen = client.wait(trace_id, timeout_s=180)

    assert len(tasks.runs_of(trace_id)) == 1  # a repository's exit is not retried
    assert "judging" in seen
    assert view["outcome"]["qa_skipped"] == "task_exited"
    qa = _judged_without_qa(view)
    assert qa["error_reason"] == "infra_error"
    assert "exited with code 3" in qa["error_detail"]
    listed = client.http.get("/v1/traces", params={"limit": 100}).json()
    (headline,) = [t for t in listed["items"] if t["trace_id"] == trace_id]
    assert headline["outcome"]["qa_skipped"] == "task_exited"


def test_a_qa_task_killed_for_its_memory_runs_once_and_says_so(
    client: TraceClient, tasks: ScriptedTasks
) -> None:
    tasks.ending = ContainerExit(137, out_of_memory=True)
    trace_id = _finalized(client)
    view, _ = client.wait(trace_id, timeout_s=180)

    assert len(tasks.runs_of(trace_id)) == 1
    assert view["outcome"]["qa_skipped"] == "out_of_memory"
    qa = _judged_without_qa(view)
    assert qa["error_reason"] == "oom"
    assert "OutOfMemoryError: Container killed due to memory usage" in qa["error_detail"]


def test_a_qa_task_that_never_starts_is_started_twice_more_then_fails_the_trace(
    client: TraceClient, tasks: ScriptedTasks
) -> None:
    tasks.failed_starts = 3
    trace_id = _finalized(client)
    view, _ = client.wait(trace_id, timeout_s=240)  # waits 10 s and 30 s between starts

    runs = tasks.runs_of(trace_id)
    assert len(runs) == 3
    # each start has a grant of its own (a restart after a long failed start is not refused)
    assert all(r.environment.get("PRTRACE_QA_GRANT") for r in runs)
    assert view["status"] == "failed", view
    outcome = view["outcome"]
    assert (outcome["stage"], outcome["error"]) == ("qa", "QA.TaskFailedToStart")
    assert outcome["cause"] == CANNOT_PULL


def test_a_qa_task_that_starts_on_its_second_try_is_reported_from_that_run(
    client: TraceClient, tasks: ScriptedTasks
) -> None:
    tasks.failed_starts, tasks.ending = 1, 1  # then it runs and stores nothing
    trace_id = _finalized(client)
    view, _ = client.wait(trace_id, timeout_s=180)

    assert len(tasks.runs_of(trace_id)) == 2
    assert view["outcome"]["qa_skipped"] == "task_exited"
    assert "exited with code 1" in _judged_without_qa(view)["error_detail"]
