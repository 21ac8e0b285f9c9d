"""ECS RunTask for the local cloud: moto records the task, a ContainerExecutor runs it.

moto runs no containers. moto_patches.py gives every task started through RunTask (by a
client, or by Step Functions' `ecs:runTask.sync`) to `EcsTaskRunner`, keeps the task
RUNNING while it works, then stops it as ECS would: `EssentialContainerExited` with the
container's exit code (and ECS's out-of-memory reason when it was killed for memory), or
`TaskFailedToStart` when the container could not be started at all. That is what `.sync`
waits for, and what the pipeline tells apart: a task that never started is started again,
one whose container ran is not. The pipeline's QA task plugs in an executor that runs the QA
container's entry point under the local sandbox backend; `HostProcessExecutor` runs the
container's command as a host process of this environment (enough for trivial tasks and
tests).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from infra_cdk.assets import ROOT
from local_cloud.moto_patches import TaskStopped

log = logging.getLogger("prtrace.local.ecs")

# What ECS reports for a stopped task (DescribeTasks: stopCode, stoppedReason, and the
# container's reason when ECS itself ended it).
ESSENTIAL_CONTAINER_EXITED = "EssentialContainerExited"
TASK_FAILED_TO_START = "TaskFailedToStart"
ESSENTIAL_EXITED_REASON = "Essential container in task exited"
OUT_OF_MEMORY_REASON = "OutOfMemoryError: Container killed due to memory usage"
OUT_OF_MEMORY_EXIT = 128 + signal.SIGKILL  # 137, as the container runtime reports it


@dataclass(frozen=True)
class ContainerRun:
    """One essential container of a started task, with RunTask overrides applied."""

    task_arn: str
    cluster: str
    family: str
    container: str
    image: str
    argv: tuple[str, ...]  # entryPoint + command
    environment: dict[str, str]
    cpu_units: int
    memory_mb: int | None


class ContainerStartFailed(Exception):
    """The container could not be started (its command is missing, its image unusable): ECS
    stops such a task with TaskFailedToStart and no exit code. The message is ECS's
    reason, e.g. "CannotStartContainerError: ..."."""


@dataclass(frozen=True)
class ContainerExit:
    """How a container that ran ended, when the executor knows more than its exit code:
    `out_of_memory` when it was killed for its memory use."""

    exit_code: int
    out_of_memory: bool = False


class ContainerExecutor(Protocol):
    def run(self, container: ContainerRun) -> int | ContainerExit:
        """Run to completion; the exit code becomes the container's exitCode. Raises
        ContainerStartFailed when the container could not be started."""
        ...


def _task_environment(base_env: dict[str, str], environment: dict[str, str]) -> dict[str, str]:
    """A task that carries its QA grant (PRTRACE_QA_GRANT) gets no AWS variable at all, no
    endpoint and no credentials, as on Fargate where its role may do nothing: it proves
    the task needs only its presigned requests."""
    if "PRTRACE_QA_GRANT" in environment:
        base_env = {k: v for k, v in base_env.items() if not k.startswith("AWS_")}
    return {**base_env, **environment}


class HostProcessExecutor:
    """Runs the container's argv in this environment (`python` is this interpreter), with
    only the container's environment plus the endpoint variables the local cloud gives."""

    def __init__(self, base_env: dict[str, str], log_dir: Path, timeout_s: float = 3600) -> None:
        self._base_env = base_env
        self._log_dir = log_dir
        self._timeout_s = timeout_s

    def run(self, container: ContainerRun) -> int | ContainerExit:
        argv = list(container.argv)
        if argv and argv[0] in {"python", "python3"}:
            argv[0] = sys.executable
        log_path = (
            self._log_dir / f"ecs-{container.family}-{container.task_arn.rsplit('/', 1)[-1]}.log"
        )
        with open(log_path, "ab") as output:
            try:
                done = subprocess.run(  # noqa: S603 - the task definition's own command
                    argv,
                    env=_task_environment(self._base_env, container.environment),
                    cwd=ROOT,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    timeout=self._timeout_s,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                return 124
            except OSError as exc:
                output.write(f"cannot start {argv[:1]}: {exc}\n".encode())
                raise ContainerStartFailed(f"CannotStartContainerError: {exc}") from None
        if done.returncode == -signal.SIGKILL:
            # Nothing in the local cloud kills a task's process with SIGKILL (its own time
            # limit is 124 above): that is the kernel's out-of-memory killer, which is what
            # ECS reports as an out-of-memory stop.
            return ContainerExit(OUT_OF_MEMORY_EXIT, out_of_memory=True)
        if done.returncode < 0:
            return 128 - done.returncode  # killed by a signal: 128 + its number, as Docker says
        return done.returncode


class LocalSandboxExecutor:
    """Runs task containers on this machine; where a task says the container itself is the
    sandbox (the QA task on Fargate: PRTRACE_SANDBOX_BACKEND=container), there is no
    container here, so the local sandbox backend (bwrap or docker) stands in for it. Code
    under test is never run unsandboxed."""

    def __init__(self, inner: ContainerExecutor, backend: str) -> None:
        if backend == "container":
            raise ValueError("the local cloud needs a local sandbox backend: bwrap or docker")
        self._inner = inner
        self._backend = backend

    def run(self, container: ContainerRun) -> int | ContainerExit:
        environment = dict(container.environment)
        if environment.get("PRTRACE_SANDBOX_BACKEND") == "container":
            # The work directory stays QA's default: a private one the sandbox user can use.
            environment["PRTRACE_SANDBOX_BACKEND"] = self._backend
        return self._inner.run(replace(container, environment=environment))


class EcsTaskRunner:
    """What moto_patches runs for each task RunTask starts: the container run read from the
    task and its definition, then handed to the executor."""

    def __init__(self, executor: ContainerExecutor) -> None:
        self.executor = executor

    def container_run(self, backend: Any, task: Any) -> ContainerRun:
        definition = backend.describe_task_definition(task.task_definition_arn)
        container_def = definition.container_definitions[0]
        override: dict[str, Any] = next(
            (
                o
                for o in (task.overrides or {}).get("containerOverrides", [])
                if o.get("name") == container_def.get("name")
            ),
            {},
        )
        environment = {e["name"]: e["value"] for e in container_def.get("environment") or []}
        environment.update({e["name"]: e["value"] for e in override.get("environment") or []})
        argv = tuple(container_def.get("entryPoint") or ()) + tuple(
            override.get("command") or container_def.get("command") or ()
        )
        return ContainerRun(
            task_arn=task.task_arn,
            cluster=task.cluster_name,
            family=definition.family,
            container=container_def.get("name", ""),
            image=container_def.get("image", ""),
            argv=argv,
            environment=environment,
            cpu_units=int(definition.cpu or container_def.get("cpu") or 0),
            memory_mb=int(definition.memory) if definition.memory else container_def.get("memory"),
        )

    def execute(self, run: ContainerRun) -> TaskStopped:
        """How ECS would stop the task once its executor is done with it."""
        try:
            ended = self.executor.run(run)
        except ContainerStartFailed as failed:
            log.info("ECS task %s (%s) failed to start: %s", run.task_arn, run.family, failed)
            return TaskStopped(
                stop_code=TASK_FAILED_TO_START,
                stopped_reason=str(failed),
                exit_code=None,
                container_reason=str(failed),
            )
        if isinstance(ended, int):
            ended = ContainerExit(ended)
        log.info("ECS task %s (%s) exited %s", run.task_arn, run.family, ended.exit_code)
        return TaskStopped(
            stop_code=ESSENTIAL_CONTAINER_EXITED,
            stopped_reason=ESSENTIAL_EXITED_REASON,
            exit_code=ended.exit_code,
            container_reason=OUT_OF_MEMORY_REASON if ended.out_of_memory else None,
        )
