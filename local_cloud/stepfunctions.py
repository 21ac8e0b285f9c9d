"""Step Functions on the local cloud: deployed state machines handed to moto's ASL
interpreter, and the events of executions that end badly delivered (moto_patches.py wires
both this and the interpreter's ECS integration into moto).

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

from local_cloud.assembly import LOCAL_ACCOUNT, LOCAL_REGION
from prtrace.pipeline.record import ENDED_BADLY, EXECUTION_STATUS_CHANGE

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


def execution_ended(invoke: Invoke) -> Callable[[Any], None]:
    """What moto_patches calls with each execution the interpreter ends: one that ended
    FAILED, TIMED_OUT or ABORTED sends "Step Functions Execution Status Change" to the
    Lambda targets of the EventBridge rules that match it, as AWS does.

    moto's interpreter emits no EventBridge events, and moto's EventBridge delivers to no
    Lambda target: this is the one place the local cloud bridges both. Delivery is
    asynchronous (a thread), as EventBridge's is, and retried on a function error.
    """

    def ended(execution: Any) -> None:
        status = getattr(execution.exec_status, "value", None)
        if status in ENDED_BADLY:
            event = _status_change(execution, status)
            threading.Thread(
                target=_deliver, args=(invoke, event), name="local-eventbridge", daemon=True
            ).start()

    return ended


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
