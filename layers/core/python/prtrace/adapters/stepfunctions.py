"""Step Functions adapters: start a trace's pipeline (one execution per trace), start a
dataset export's job (one execution per export) and read its state."""

from __future__ import annotations

from typing import Any, Protocol

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from prtrace.ports import PipelineUnavailable


class StartsExecutions(Protocol):
    """The one call of boto3's Step Functions client this adapter makes."""

    def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> Any: ...  # noqa: N803


class StepFunctionsPipelineStarter:
    def __init__(self, client: StartsExecutions, state_machine_arn: str) -> None:
        self._sfn = client
        self._arn = state_machine_arn

    def start(self, tenant: str, trace_id: str) -> None:
        try:
            # The execution name is the trace id: Step Functions refuses a second execution
            # of that name (for 90 days after the first closes), so finalizing twice, or
            # concurrently, starts one pipeline.
            self._sfn.start_execution(
                stateMachineArn=self._arn,
                name=trace_id,
                input=orjson.dumps({"tenant": tenant, "trace_id": trace_id}).decode(),
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return  # started before: by an earlier or a concurrent finalize
            raise PipelineUnavailable(f"pipeline of {trace_id} not started: {error}") from error
        except BotoCoreError as error:  # endpoint unreachable, timeouts after retries
            raise PipelineUnavailable(f"pipeline of {trace_id} not started: {error}") from error


class StepFunctionsExportLauncher:
    """The export job's state machine: the execution is named after the export id."""

    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._sfn = client
        self._arn = state_machine_arn

    def start(self, tenant: str, export_id: str) -> None:
        try:
            self._sfn.start_execution(
                stateMachineArn=self._arn,
                name=export_id,
                input=orjson.dumps({"tenant": tenant, "export_id": export_id}).decode(),
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return
            raise PipelineUnavailable(f"export job {export_id} not started: {error}") from error
        except BotoCoreError as error:
            raise PipelineUnavailable(f"export job {export_id} not started: {error}") from error

    def state(self, export_id: str) -> tuple[str, str | None] | None:
        # arn:aws:states:REGION:ACCOUNT:stateMachine:NAME → …:execution:NAME:EXECUTION
        execution = self._arn.replace(":stateMachine:", ":execution:", 1) + f":{export_id}"
        try:
            answer = self._sfn.describe_execution(executionArn=execution)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                return None
            raise
        status = str(answer["status"])
        if status == "RUNNING":
            return status, None
        reason = " ".join(str(answer[k]) for k in ("error", "cause") if answer.get(k))
        return status, reason or None
