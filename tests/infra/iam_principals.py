"""Each role of the stack that runs prtrace code, with its granted statements and the
requests it needs, all resolved to strings (tests/infra/cfn_values.py).

- A function, or a container task whose code is recorded (the export task), needs what
  its recorded calls need (tests/infra/iam_usage.json, written by
  tests/infra/aws_calls.py; `$NAME`s resolved through the function's own environment
  in the template) and what the Lambda service does for it: write its log streams and,
  with active tracing, send X-Ray segments.
- The state machine needs what each Task state's service integration needs, read from
  the definition in the template (the integrations' documented IAM policies), and what
  logging and tracing of executions need.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from tests.infra.aws_requests import requests_of, table_arn
from tests.infra.cfn_values import ACCOUNT, PARTITION, REGION, TemplateValues
from tests.infra.iam_policy import Request

STATE_MACHINE: Final = "state-machine"
EXPORT_STATE_MACHINE: Final = "export-state-machine"
_HANDLER = re.compile(r"functions\.(\w+)\.handler\.lambda_handler")
_TASK = re.compile(r"python -m functions\.(\w+)")  # a container task's entry point
_ANY: Final = "*"
_REGIONAL = f"{REGION}:{ACCOUNT}"

# Step Functions' documented needs: logging to CloudWatch Logs, X-Ray tracing.
_EXECUTION_LOGGING: Final = tuple(
    f"logs:{a}"
    for a in (
        "CreateLogDelivery",
        "GetLogDelivery",
        "UpdateLogDelivery",
        "DeleteLogDelivery",
        "ListLogDeliveries",
        "PutResourcePolicy",
        "DescribeResourcePolicies",
        "DescribeLogGroups",
    )
)
_EXECUTION_TRACING: Final = tuple(
    f"xray:{a}"
    for a in ("PutTraceSegments", "PutTelemetryRecords", "GetSamplingRules", "GetSamplingTargets")
)
_FUNCTION_TRACING: Final = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")
# `.sync` learns that a task stopped through this rule, which Step Functions manages.
_ECS_SYNC_RULE: Final = (
    f"arn:{PARTITION}:events:{_REGIONAL}:rule/StepFunctionsGetEventsForECSTaskRule"
)

_ECS_SYNC_RULE_ACTIONS: Final = ("PutTargets", "PutRule", "DescribeRule")


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    statements: list[dict[str, Any]]
    requests: list[Request]


def principals(template: dict[str, Any], usage: dict[str, Any]) -> dict[str, Principal]:
    """Every function, the container tasks and the state machines, by name (`api`, …,
    `export_job`, `qa_runner`, `state-machine`, `export-state-machine`)."""
    values = TemplateValues(template)
    found = {}
    for logical_id, resource in values.resources.items():
        props = resource["Properties"]
        if resource["Type"] == "AWS::Lambda::Function":
            name = _HANDLER.fullmatch(props["Handler"])
            if name:
                calls = usage["functions"].get(name.group(1), [])
                requests = _function_requests(values, logical_id, props, calls)
                found[name.group(1)] = _principal(values, name.group(1), props["Role"], requests)
        elif resource["Type"] == "AWS::ECS::TaskDefinition":
            for container in props["ContainerDefinitions"]:
                name = _TASK.fullmatch(" ".join(container.get("EntryPoint", [])))
                if name:  # a task with no recorded calls (QA) must need no permission
                    calls = usage["functions"].get(name.group(1), [])
                    requests = _task_requests(values, logical_id, container, calls)
                    found[name.group(1)] = _principal(
                        values, name.group(1), props["TaskRoleArn"], requests
                    )
        elif resource["Type"] == "AWS::StepFunctions::StateMachine":
            requests = _state_machine_requests(values, props)
            name = EXPORT_STATE_MACHINE if logical_id.startswith("Export") else STATE_MACHINE
            if name in found:
                raise AssertionError(f"two state machines are both {name}")
            found[name] = _principal(values, name, props["RoleArn"], requests)
    return found


def _principal(
    values: TemplateValues, name: str, role_arn: Any, requests: list[Request]
) -> Principal:
    role = role_arn["Fn::GetAtt"][0]
    statements = [
        values.resolve(statement)
        for policy in values.resources.values()
        if policy["Type"] == "AWS::IAM::Policy" and {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    return Principal(name, role, statements, sorted(set(requests), key=str))


def _function_requests(
    values: TemplateValues, logical_id: str, props: dict[str, Any], calls: list[dict[str, Any]]
) -> list[Request]:
    environment = props.get("Environment", {}).get("Variables", {})

    def setting(variable: str) -> str:
        if variable not in environment:
            raise AssertionError(f"{logical_id}'s code reads ${variable}; it is not deployed")
        return str(values.resolve(environment[variable]))

    group = values.resolve(props["LoggingConfig"]["LogGroup"])
    stream = f"arn:{PARTITION}:logs:{_REGIONAL}:log-group:{group}:log-stream:2025/01/01/[$LATEST]0"
    found = [Request(a, stream) for a in ("logs:CreateLogStream", "logs:PutLogEvents")]
    if props.get("TracingConfig", {}).get("Mode") == "Active":
        found += [Request(a, _ANY) for a in _FUNCTION_TRACING]
    for call in calls:
        found += requests_of(call, setting)
    return found


def _task_requests(
    values: TemplateValues,
    logical_id: str,
    container: dict[str, Any],
    calls: list[dict[str, Any]],
) -> list[Request]:
    """A container task's role: its code's calls only (the awslogs driver writes its logs
    with the execution role, not the task's)."""
    environment = {e["Name"]: e["Value"] for e in container.get("Environment", [])}

    def setting(variable: str) -> str:
        if variable not in environment:
            raise AssertionError(f"{logical_id}'s code reads ${variable}; it is not deployed")
        return str(values.resolve(environment[variable]))

    return [request for call in calls for request in requests_of(call, setting)]


def _state_machine_requests(values: TemplateValues, props: dict[str, Any]) -> list[Request]:
    definition = json.loads(values.resolve(props["DefinitionString"]))
    found = []
    for state in _tasks(definition):
        found += _integration_requests(values, state["Resource"], state.get("Parameters", {}))
    if props.get("LoggingConfiguration", {}).get("Destinations"):
        found += [Request(a, _ANY) for a in _EXECUTION_LOGGING]
    if props.get("TracingConfiguration", {}).get("Enabled"):
        found += [Request(a, _ANY) for a in _EXECUTION_TRACING]
    return found


def _tasks(node: Any) -> Iterator[dict[str, Any]]:
    """Every Task state, however deeply nested (Parallel branches, Map processors)."""
    if isinstance(node, dict):
        if node.get("Type") == "Task":
            yield node
        for value in node.values():
            yield from _tasks(value)
    elif isinstance(node, list):
        for value in node:
            yield from _tasks(value)


def _integration_requests(
    values: TemplateValues, resource: str, parameters: dict[str, Any]
) -> list[Request]:
    service, _, operation = resource.removeprefix(f"arn:{PARTITION}:states:::").partition(":")
    if service == "lambda" and operation == "invoke":
        return [Request("lambda:InvokeFunction", parameters["FunctionName"])]
    if service == "dynamodb":
        action = f"dynamodb:{operation[0].upper()}{operation[1:]}"
        return [Request(action, table_arn(parameters["TableName"]))]
    if service == "ecs" and operation == "runTask.sync":
        return _run_task_sync(values, parameters)
    raise NotImplementedError(f"no IAM needs known for the integration {resource}")


def _run_task_sync(values: TemplateValues, parameters: dict[str, Any]) -> list[Request]:
    cluster, task_definition = parameters["Cluster"], parameters["TaskDefinition"]
    on_cluster = {"ecs:cluster": cluster}
    task = f"arn:{PARTITION}:ecs:{_REGIONAL}:task/{cluster.rsplit('/', 1)[1]}/0123456789abcdef"
    definition = values.resources[values.logical_id_of(task_definition)]["Properties"]
    passed = {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    return [
        Request("ecs:RunTask", task_definition, on_cluster),
        Request("ecs:DescribeTasks", task, on_cluster),
        Request("ecs:StopTask", task, on_cluster),
        *(
            Request(f"events:{a}", _ECS_SYNC_RULE)
            for a in ("PutTargets", "PutRule", "DescribeRule")
        ),
        *(
            Request("iam:PassRole", values.resolve(definition[role]), passed)
            for role in ("TaskRoleArn", "ExecutionRoleArn")
            if role in definition
        ),
    ]
