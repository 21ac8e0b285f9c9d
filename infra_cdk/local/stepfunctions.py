"""Step Functions on the local cloud: deployed state machines handed to moto's ASL
interpreter, and the interpreter's ECS integration made to speak as AWS's does.

moto's CloudFormation creates `AWS::StepFunctions::StateMachine` in its plain Step
Functions backend, whose executions never run; with `execute_state_machine` on, the API is
served by the interpreter's backend instead. Each deployed state machine is recreated
there with the same name (hence the same ARN, which the stack's functions already hold),
definition and role, so StartExecution through the API runs it for real.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from infra_cdk.local.assembly import LOCAL_ACCOUNT, LOCAL_REGION
from prtrace.record import ENDED_BADLY, EXECUTION_STATUS_CHANGE

log = logging.getLogger("prtrace.local.stepfunctions")
# (function name, event) -> (payload, errored), as the gateway invokes
Invoke = Callable[[str, dict[str, Any]], tuple[bytes, bool]]


def hand_to_interpreter(state_machine_arns: Iterable[str]) -> list[str]:
    """Returns the ARNs now executable; raises when a deployed one cannot be found."""
    from moto.stepfunctions.models import stepfunctions_backends
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    deployed = {
        m.arn: m for m in stepfunctions_backends[LOCAL_ACCOUNT][LOCAL_REGION].state_machines
    }
    interpreter = stepfunctions_parser_backends[LOCAL_ACCOUNT][LOCAL_REGION]
    handed = []
    for arn in state_machine_arns:
        machine = deployed.get(arn)
        if machine is None:
            raise LookupError(f"state machine {arn} is not in moto's CloudFormation backend")
        created = interpreter.create_state_machine(
            name=machine.name,
            definition=machine.definition,
            roleArn=machine.roleArn,
            loggingConfiguration=machine.loggingConfiguration,  # type: ignore[arg-type]
            tracingConfiguration=machine.tracingConfiguration,  # type: ignore[arg-type]
        )
        if created.arn != arn:  # clients (the API function) were given the deployed ARN
            raise RuntimeError(f"state machine recreated as {created.arn}, expected {arn}")
        handed.append(created.arn)
    return handed


def normalise_ecs_integration() -> Callable[[], None]:
    """Make the interpreter's `ecs:runTask(.sync)` speak as AWS's does; returns the undo.

    moto's port of the interpreter leaves request and response normalisation out (the base
    methods are no-ops), so a state written for AWS (PascalCase `Cluster`, `TaskDefinition`,
    … in, PascalCase `Containers[0].ExitCode` out) fails on botocore's serializer. The
    interpreter's own `_to_boto_request` / `_from_boto_response` helpers do that mapping
    from the ECS service model; this wires them in, for ECS only.
    """
    from botocore import xform_name
    from botocore.session import get_session
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_ecs,
    )

    service = state_task_service_ecs.StateTaskServiceEcs
    model = get_session().get_service_model("ecs")
    operations = {xform_name(name): model.operation_model(name) for name in model.operation_names}

    def normalise_parameters(
        self: Any,
        parameters: dict[str, Any],
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        operation = operations[self._get_boto_service_action(service_action_name)]
        self._to_boto_request(parameters, operation.input_shape)

    def normalise_response(
        self: Any,
        response: Any,
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        operation = operations[self._get_boto_service_action(service_action_name)]
        self._from_boto_response(response, operation.output_shape)

    had = {
        name: service.__dict__.get(name)
        for name in ("_normalise_parameters", "_normalise_response")
    }
    service._normalise_parameters = normalise_parameters  # type: ignore[method-assign]
    service._normalise_response = normalise_response  # type: ignore[method-assign]

    def undo() -> None:
        for name, original in had.items():
            if original is None:
                delattr(service, name)
            else:
                setattr(service, name, original)

    return undo


def deliver_execution_ends(invoke: Invoke) -> Callable[[], None]:
    """Send "Step Functions Execution Status Change" for executions that end FAILED,
    TIMED_OUT or ABORTED to the Lambda targets of the EventBridge rules that match it, as
    AWS does; returns the undo.

    moto's interpreter emits no EventBridge events, and moto's EventBridge delivers to no
    Lambda target: this is the one place the local cloud bridges both. Delivery is
    asynchronous (a thread), as EventBridge's is, and retried on a function error.
    """
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    original = BaseExecutionWorkerCommunication.terminated

    def terminated(self: Any) -> None:
        original(self)
        execution = self.execution
        status = getattr(execution.exec_status, "value", None)
        if status in ENDED_BADLY:
            event = _status_change(execution, status)
            threading.Thread(
                target=_deliver, args=(invoke, event), name="local-eventbridge", daemon=True
            ).start()

    BaseExecutionWorkerCommunication.terminated = terminated  # type: ignore[method-assign]

    def undo() -> None:
        BaseExecutionWorkerCommunication.terminated = original  # type: ignore[method-assign]

    return undo


def _status_change(execution: Any, status: str) -> dict[str, Any]:
    def millis(moment: datetime.datetime | None) -> int | None:
        return None if moment is None else int(moment.timestamp() * 1000)

    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": EXECUTION_STATUS_CHANGE,
        "source": "aws.states",
        "account": LOCAL_ACCOUNT,
        "time": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": LOCAL_REGION,
        "resources": [execution.exec_arn],
        "detail": {
            "executionArn": execution.exec_arn,
            "stateMachineArn": execution.state_machine_arn,
            "name": execution.name,
            "status": status,
            "startDate": millis(execution.start_date),
            "stopDate": millis(execution.stop_date),
            "input": json.dumps(execution.input_data),
            "output": None,
            "error": execution.error,
            "cause": execution.cause,
        },
    }


def _deliver(invoke: Invoke, event: dict[str, Any], attempts: int = 3) -> None:
    from moto.events.models import events_backends

    rules = events_backends[LOCAL_ACCOUNT][LOCAL_REGION].event_buses["default"].rules.values()
    for rule in list(rules):
        if rule.state != "ENABLED" or not rule.event_pattern.matches_event(event):  # type: ignore[arg-type]
            continue
        for target in rule.targets:
            arn: str = target["Arn"]
            if ":lambda:" not in arn:
                continue
            for attempt in range(attempts):
                _, errored = invoke(arn.split(":")[6], event)
                if not errored:
                    break
                log.warning("%s failed on %s (attempt %d)", arn, rule.name, attempt + 1)
                time.sleep(0.5 * (attempt + 1))
