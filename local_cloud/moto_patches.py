"""Every change the local cloud makes to moto's own code, in this one module, each one
installed by a function that returns its undo. tests/unit/test_moto_patches.py holds the
canaries: each fails when the moto behaviour a patch works around, or the internals it
replaces, change (moto is pinned exactly for that reason).

Two sets:

- `emulator_patches()`, for any use of moto's server or of its in-process mocks that
  needs DynamoDB to behave as DynamoDB does: one DynamoDB call at a time (DynamoDB applies
  each write and transaction atomically; moto's threaded server does not), cancelled
  transactions rolled back from backups of the items they write (moto deep-copies whole
  tables), Query reading only the partition's key range (moto sorts the whole table),
  Lambda's GetAccountSettings (moto has none; the deploy preflight reads it), moto's
  service list read once, keep-alive connections, no per-request access log. Nested
  uses share one installation; the last to leave undoes it.
- `install(...)`, for one local cloud at a time: Lambda invocations run by the local
  workers, ECS tasks run by the local executor and stopped as ECS stops them, the Step
  Functions interpreter pointed at this process's emulator (moto reads the port from
  MOTO_PORT, which is not set here) with its ECS integration normalised as AWS's (a
  `runTask.sync` whose task did not end with every container exiting 0 fails with
  States.TaskFailed) and execution ends delivered to EventBridge's Lambda targets,
  CloudFormation taught the CDK bridge's resource types, and moto's logs about what the
  bridge models silenced.

Threads of the local cloud change moto's objects (an ECS task ends while the emulator
serves DescribeTasks, whose `advance()` changes the same task): those changes and every ECS
request hold `MOTO_LOCK`. Nothing here touches the process's environment variables.

Of the local cloud this module imports only fn_sub.py: the bridged types, the Lambda
runner, the ECS executor and the execution-end hook are handed to `install`, so every
other module (the emulator, the bridge, the cloud) may import this one.
"""

from __future__ import annotations

import bisect
import copy
import functools
import logging
import threading
import types
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from local_cloud.fn_sub import sub_as_join, sub_with_dollar_dollar

log = logging.getLogger("prtrace.local.moto")

# Held by every ECS request the emulator serves and by every change a local-cloud thread
# makes to moto's objects.
MOTO_LOCK = threading.RLock()
# One DynamoDB call at a time (see serialize_dynamodb).
_DYNAMODB_LOCK = threading.RLock()
_MISSING: Any = object()

Undo = Callable[[], None]


class Patches:
    """Attributes replaced on moto's classes and modules (and other undoable changes),
    restored in reverse order."""

    def __init__(self) -> None:
        self._undos: list[Undo] = []

    def replace(self, owner: Any, name: str, value: Any) -> None:
        """Set `owner.name` to `value` until `undo`."""
        original = vars(owner).get(name, _MISSING)  # not inherited: undo deletes ours then

        def restore() -> None:
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)

        setattr(owner, name, value)
        self._undos.append(restore)

    def on_undo(self, restore: Undo) -> None:
        self._undos.append(restore)

    def undo(self) -> None:
        while self._undos:
            self._undos.pop()()


# -- the emulator: DynamoDB as DynamoDB behaves, a faster server ---------------------------

_emulator_users = 0
_emulator_undo: Patches | None = None
_emulator_guard = threading.Lock()


@contextmanager
def emulator_patches() -> Iterator[None]:
    """The emulator's patches while inside (see the module's documentation)."""
    global _emulator_users, _emulator_undo
    with _emulator_guard:
        if _emulator_users == 0:
            patches = Patches()
            _install_emulator(patches)
            _emulator_undo = patches
        _emulator_users += 1
    try:
        yield
    finally:
        with _emulator_guard:
            _emulator_users -= 1
            if _emulator_users == 0 and _emulator_undo is not None:
                _emulator_undo.undo()
                _emulator_undo = None


def _install_emulator(patches: Patches) -> None:
    import moto.backends
    import moto.dynamodb.models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    original_call: Callable[[Any], Any] = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with _DYNAMODB_LOCK:
            return original_call(self)

    patches.replace(DynamoHandler, "call_action", call_action)

    # Transactions back up the items they write, not the tables they name.
    patches.replace(
        dynamodb_models,
        "copy",
        types.SimpleNamespace(deepcopy=_deepcopy_but_tables, copy=copy.copy),
    )
    original_transact = DynamoDBBackend.transact_write_items

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        backups = _written_items(self, transact_items)
        try:
            original_transact(self, transact_items)
        except Exception:
            for table_name, key, attributes in reversed(backups):
                if attributes is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attributes)
            raise

    patches.replace(DynamoDBBackend, "transact_write_items", transact_write_items)
    patches.replace(Table, "query", _partition_query(Table.query))

    # moto's server lists its own package folder (a listdir, and an isdir per service) on
    # every request to find which service a host names; the list cannot change meanwhile.
    listed = tuple(moto.backends.list_of_moto_modules())
    patches.replace(moto.backends, "list_of_moto_modules", lambda: listed)
    # Keep-alive: HTTP/1.0 made every AWS call open a connection and start a server thread.
    patches.replace(MotoRequestHandler, "protocol_version", "HTTP/1.1")

    werkzeug = logging.getLogger("werkzeug")
    patches.on_undo(functools.partial(werkzeug.setLevel, werkzeug.level))
    werkzeug.setLevel(logging.ERROR)  # no per-request access log
    lambda_account_settings(patches)


# AWS's default concurrency quota; moto's own knob for the quota it enforces on
# PutFunctionConcurrency sets it (tests set it low to play a new account).
LAMBDA_QUOTA_VARIABLE = "MOTO_LAMBDA_CONCURRENCY_QUOTA"
DEFAULT_LAMBDA_QUOTA = 1000
_ACCOUNT_SETTINGS_PATH = r"{0}/(?P<api_version>[^/]+)/account-settings/?$"


def lambda_account_settings(patches: Patches) -> None:
    """Lambda's GetAccountSettings: the quota moto enforces, and what the functions'
    reservations leave unreserved (AWS's answer's shape)."""
    import os

    import moto.awslambda.urls as lambda_urls
    from moto.awslambda.responses import LambdaResponse

    def get_account_settings(self: Any) -> str:
        quota = int(os.environ.get(LAMBDA_QUOTA_VARIABLE, DEFAULT_LAMBDA_QUOTA))
        functions = self.backend.list_functions()
        reserved = sum(int(f.reserved_concurrency or 0) for f in functions)
        return orjson.dumps(
            {
                "AccountLimit": {
                    "TotalCodeSize": 80_530_636_800,
                    "CodeSizeUnzipped": 262_144_000,
                    "CodeSizeZipped": 52_428_800,
                    "ConcurrentExecutions": quota,
                    "UnreservedConcurrentExecutions": max(quota - reserved, 0),
                },
                "AccountUsage": {
                    "TotalCodeSize": sum(int(f.code_size or 0) for f in functions),
                    "FunctionCount": len(functions),
                },
            }
        ).decode()

    patches.replace(LambdaResponse, "get_account_settings", get_account_settings)
    lambda_urls.url_paths[_ACCOUNT_SETTINGS_PATH] = LambdaResponse.dispatch

    def remove_path() -> None:
        lambda_urls.url_paths.pop(_ACCOUNT_SETTINGS_PATH, None)

    patches.on_undo(remove_path)


def _deepcopy_but_tables(value: Any, memo: Any = None) -> Any:
    from moto.dynamodb.models.table import Table

    return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _written_items(
    backend: Any, transact_items: list[dict[str, Any]]
) -> list[tuple[str, dict[str, Any], dict[str, Any] | None]]:
    """(table, key, the item as stored now or None) for each Put, Update and Delete."""
    backups: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    for entry in transact_items:
        op_type, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName", ""))
        if op_type not in ("Put", "Update", "Delete") or table is None:
            continue
        try:
            if op_type == "Put":
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            current = backend.get_item(op["TableName"], key)
        except Exception:  # noqa: S112 - a malformed op: moto itself refuses it, writing nothing
            continue
        stored = copy.deepcopy(current.to_json()["Attributes"]) if current is not None else None
        backups.append((op["TableName"], key, stored))
    return backups


# Key conditions answerable from a partition sorted by its range key.
_RANGE_BOUNDS = {"EQ", "=", "LT", "<", "LE", "<=", "GT", ">", "GE", ">=", "BETWEEN", "BEGINS_WITH"}


class _PartitionView:
    """The table as moto's query sees it, but whose `all_items()` is the few items a key
    condition admits from one partition."""

    def __init__(self, table: Any, items: list[Any]) -> None:
        self._table = table
        self._items = items

    def all_items(self) -> list[Any]:
        return self._items

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


def _partition_query(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto answers every Query by sorting every item of the table and comparing each, so a
    chunk PUT's neighbour lookups grew with everything stored (DynamoDB reads only the
    key range asked for). For a base-table query with a hash key and a range bound, hand
    moto's own query (its limits, pagination keys, filters and projections) only the
    partition's items inside the bound, found by bisection, and only as many as the limit
    can consume. Anything else (indexes, pagination, BEGINS_WITH, legacy filters) is moto's
    unchanged."""

    @functools.wraps(original)
    def query(self: Any, hash_key: Any, range_comparison: Any, range_objs: list[Any],
              limit: Any, exclusive_start_key: Any, scan_index_forward: bool,
              *args: Any, **kwargs: Any) -> Any:  # fmt: skip
        index_name = args[1] if len(args) > 1 else kwargs.get("index_name")
        fast = (
            index_name is None
            and hash_key is not None
            and self.range_key_attr is not None
            and (range_comparison is None or range_comparison in _RANGE_BOUNDS)
            and not set(kwargs) - {"hash_key_conditions", "range_key_conditions"}
        )
        bounded = (self, hash_key, range_comparison, range_objs, scan_index_forward)
        items = _bounded_items(*bounded, exclusive_start_key) if fast else None
        if items is None:
            return original(self, hash_key, range_comparison, range_objs, limit,
                            exclusive_start_key, scan_index_forward, *args, **kwargs)  # fmt: skip
        if limit:
            # moto reads one item past the limit to decide on LastEvaluatedKey
            items = items[: limit + 1] if scan_index_forward else items[-(limit + 1) :]
        view: Any = _PartitionView(self, items)
        return original(view, hash_key, range_comparison, range_objs, limit,
                        exclusive_start_key, scan_index_forward, *args, **kwargs)  # fmt: skip

    return query


def _bounded_items(
    table: Any,
    hash_key: Any,
    comparison: str | None,
    bounds: list[Any],
    forward: bool,
    start_key: dict[str, Any] | None,
) -> list[Any] | None:
    """The partition's items inside the key condition and after the page's start key, in
    range-key order, and the next one past them in the direction read (moto sets
    LastEvaluatedKey when any item follows the last one a limit admits); None when the keys
    are not all strings or all numbers of the bounds' type (moto decides those)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    partition: dict[Any, Any] = table.items.get(hash_key) or {}  # .get: no empty partition made
    range_attr = table.range_key_attr or ""
    start = DynamoType(start_key[range_attr]) if start_key else None
    kinds = {key.type for key in partition} | {bound.type for bound in bounds}
    kinds |= {start.type} if start is not None else set()
    if not kinds <= {"S"} and not kinds <= {"N"}:
        return None
    ordered = sorted(partition.items(), key=lambda pair: pair[0].cast_value)
    keys = [key.cast_value for key, _ in ordered]
    low, high = 0, len(keys)
    values = [bound.cast_value for bound in bounds]
    if comparison in ("EQ", "="):
        low, high = bisect.bisect_left(keys, values[0]), bisect.bisect_right(keys, values[0])
    elif comparison in ("LT", "<"):
        high = bisect.bisect_left(keys, values[0])
    elif comparison in ("LE", "<="):
        high = bisect.bisect_right(keys, values[0])
    elif comparison in ("GT", ">"):
        low = bisect.bisect_right(keys, values[0])
    elif comparison in ("GE", ">="):
        low = bisect.bisect_left(keys, values[0])
    elif comparison == "BETWEEN":
        low, high = bisect.bisect_left(keys, values[0]), bisect.bisect_right(keys, values[1])
    elif comparison == "BEGINS_WITH" and values[0]:
        prefix = values[0]
        after = prefix[:-1] + chr(ord(prefix[-1]) + 1)  # the first string past the prefix
        low, high = bisect.bisect_left(keys, prefix), bisect.bisect_left(keys, after)
    if start is not None:  # the page begins after the previous page's last key
        if forward:
            low = max(low, bisect.bisect_right(keys, start.cast_value))
        else:
            high = min(high, bisect.bisect_left(keys, start.cast_value))
    high = max(low, high)
    if forward:
        high = min(high + 1, len(ordered))
    else:
        low = max(low - 1, 0)
    return [item for _, item in ordered[low:high]]


# -- the local cloud -----------------------------------------------------------------------


@dataclass(frozen=True)
class TaskStopped:
    """How a task ended, in DescribeTasks' terms: its stopCode and stoppedReason, its
    container's exitCode (None: the container never ran) and the container's reason (ECS
    sets one when it ended the container itself, e.g. for its memory use)."""

    stop_code: str
    stopped_reason: str
    exit_code: int | None
    container_reason: str | None = None


class EcsTasks(Protocol):
    """What runs the tasks RunTask starts (ecs.py)."""

    def container_run(self, backend: Any, task: Any) -> Any:
        """What to run for a task moto has just created (read under MOTO_LOCK)."""
        ...

    def execute(self, run: Any) -> TaskStopped:
        """Run it to completion (in a thread of its own)."""
        ...


_cloud_guard = threading.Lock()
_cloud_installed = False


def install(
    *,
    aws_endpoint: str,
    bridged_types: Mapping[str, type],
    invoke_lambda: Callable[[Any, Any], tuple[str, bool, str]],
    ecs_tasks: EcsTasks,
    execution_ended: Callable[[Any], None],
) -> Undo:
    """A local cloud's patches (see the module's documentation); returns the undo. One
    local cloud per process: moto's backends and these patches are the process's."""
    global _cloud_installed
    with _cloud_guard:
        if _cloud_installed:
            raise RuntimeError("another local cloud's moto patches are installed in this process")
        _cloud_installed = True
    patches = Patches()
    try:
        lambda_invocations(patches, invoke_lambda)
        ecs_task_runs(patches, ecs_tasks)
        stepfunctions_interpreter(patches, aws_endpoint, execution_ended)
        cloudformation_bridge(patches, bridged_types)
        _quiet_logs(patches)
    except BaseException:
        patches.undo()
        _release_cloud()
        raise

    def undo() -> None:
        patches.undo()
        _release_cloud()

    return undo


def _release_cloud() -> None:
    global _cloud_installed
    with _cloud_guard:
        _cloud_installed = False


def lambda_invocations(
    patches: Patches, invoke: Callable[[Any, Any], tuple[str, bool, str]]
) -> None:
    """moto's Lambda runs each invocation in a Docker container: `invoke(function, event)
    -> (payload, errored, logs)` runs it instead."""
    from moto.awslambda.models import LambdaFunction

    def invoke_lambda(function: Any, event: Any = None) -> tuple[str, bool, str]:
        return invoke(function, event)

    patches.replace(LambdaFunction, "_invoke_lambda", invoke_lambda)


def ecs_task_runs(patches: Patches, tasks: EcsTasks) -> None:
    """moto runs no containers: every task RunTask starts (by a client, or by Step
    Functions' `ecs:runTask.sync`) goes to `tasks`, stays RUNNING while it runs (moto would
    move it to STOPPED on the first DescribeTasks), then is STOPPED with the container's
    exit code, which is what `.sync` waits for."""
    from moto.ecs.models import EC2ContainerServiceBackend
    from moto.ecs.responses import EC2ContainerServiceResponse
    from moto.moto_api import state_manager

    original_call: Callable[[Any], Any] = EC2ContainerServiceResponse.call_action

    def call_action(self: Any) -> Any:
        with MOTO_LOCK:
            return original_call(self)

    patches.replace(EC2ContainerServiceResponse, "call_action", call_action)
    original_run_task = EC2ContainerServiceBackend.run_task

    def run_task(backend: Any, *args: Any, **kwargs: Any) -> Any:
        with MOTO_LOCK:
            started = original_run_task(backend, *args, **kwargs)
            for task in started:
                run = tasks.container_run(backend, task)
                _set_task_status(task, "RUNNING")
                threading.Thread(
                    target=_run_task, args=(tasks, task, run), name="local-ecs", daemon=True
                ).start()
        return started

    patches.replace(EC2ContainerServiceBackend, "run_task", run_task)
    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
    patches.on_undo(functools.partial(state_manager.unset_transition, "ecs::task"))


def _set_task_status(task: Any, status: str) -> None:
    for container in task.containers:
        container.last_status = status
    task.last_status = status


def _run_task(tasks: EcsTasks, task: Any, run: Any) -> None:
    try:
        stopped = tasks.execute(run)
    except Exception as exc:  # the executor's failure is the task's failure, not ours
        log.exception("ECS executor failed for %s", task.task_arn)
        reason = f"CannotStartContainerError: local executor error: {type(exc).__name__}"
        stopped = TaskStopped("TaskFailedToStart", reason, None, reason)
    with MOTO_LOCK:
        for container in task.containers:
            # moto serialises what is set: no exitCode for a container that never ran
            container.exitCode = stopped.exit_code
            if stopped.container_reason is not None:
                container.reason = stopped.container_reason
        _set_task_status(task, "STOPPED")
        task.stop_code = stopped.stop_code
        task.stopped_reason = stopped.stopped_reason
        task.desired_status = "STOPPED"


def stepfunctions_interpreter(
    patches: Patches, aws_endpoint: str, execution_ended: Callable[[Any], None]
) -> None:
    """Point the interpreter's service integrations at `aws_endpoint` (moto reads the port
    from MOTO_PORT), make its `ecs:runTask(.sync)` speak as AWS's does, and hand each ended
    execution to `execution_ended(execution)`.

    moto's port of the interpreter leaves request and response normalisation out (the base
    methods are no-ops), so a state written for AWS (PascalCase `Cluster`, `TaskDefinition`,
    … in, PascalCase `Containers[0].ExitCode` out) fails on botocore's serializer. The
    interpreter's own `_to_boto_request` / `_from_boto_response` helpers do that mapping
    from the ECS service model; this wires them in, for ECS only."""
    from botocore import xform_name
    from botocore.session import get_session
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_ecs,
    )
    from moto.stepfunctions.parser.asl.utils import boto_client
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    port = aws_endpoint.rsplit(":", 1)[1].split("/", 1)[0]
    patches.replace(boto_client, "moto_server_port", lambda: port)

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

    patches.replace(service, "_normalise_parameters", normalise_parameters)
    patches.replace(service, "_normalise_response", normalise_response)
    patches.replace(service, "_build_sync_resolver", _failing_stopped_tasks(service))

    original_terminated = BaseExecutionWorkerCommunication.terminated

    def terminated(self: Any) -> None:
        original_terminated(self)
        execution_ended(self.execution)

    patches.replace(BaseExecutionWorkerCommunication, "terminated", terminated)


def _failing_stopped_tasks(service: Any) -> Callable[..., Any]:
    """moto's `ecs:runTask.sync` returns every stopped task as a success. AWS's fails the
    state with States.TaskFailed, the Cause the stopped task's description as JSON (the
    shape `.sync` returns on success), unless the task ran and every container exited 0:
    a task that failed to start, or whose container exited non-zero or was killed, fails."""
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    original: Callable[..., Any] = service._build_sync_resolver

    def build_sync_resolver(self: Any, env: Any, *args: Any, **kwargs: Any) -> Any:
        resolve = original(self, env, *args, **kwargs)

        def resolve_or_fail() -> Any:
            task = resolve()
            if task is None or all(c.get("ExitCode") == 0 for c in task.get("Containers") or ()):
                return task
            failed = StatesErrorNameType.StatesTaskFailed
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=failed),
                    event_type=HistoryEventType.TaskFailed,
                    # moto declares the TypedDict total; its own integrations fill one key
                    event_details=EventDetails(  # type: ignore[typeddict-item]
                        taskFailedEventDetails=TaskFailedEventDetails(
                            resource=self._get_sfn_resource(),
                            resourceType=self._get_sfn_resource_type(),
                            error=failed.to_name(),
                            cause=to_json_str(task),
                        )
                    ),
                )
            )

        return resolve_or_fail

    return build_sync_resolver


def cloudformation_bridge(patches: Patches, bridged_types: Mapping[str, type]) -> None:
    """Teach moto's CloudFormation the bridged types (cdk_bridge.py), a correct `Fn::Sub`
    and the outputs of executed change sets."""
    from moto.cloudformation import parsing
    from moto.cloudformation.models import CloudFormationBackend

    original_class_from_type = parsing.resource_class_from_type
    original_clean_json = parsing.clean_json
    original_execute_change_set = CloudFormationBackend.execute_change_set

    def resource_class_from_type(resource_type: str) -> Any:
        bridged = bridged_types.get(resource_type)
        return bridged if bridged is not None else original_class_from_type(resource_type)

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, dict) and sub_with_dollar_dollar(resource_json):
            resource_json = sub_as_join(*resource_json["Fn::Sub"])
        return original_clean_json(resource_json, resources_map)

    def execute_change_set(
        self: CloudFormationBackend, change_set_name: str, stack_name: str | None = None
    ) -> None:
        original_execute_change_set(self, change_set_name, stack_name)
        change_set = self.change_sets.get(change_set_name) or next(
            c for c in self.change_sets.values() if c.change_set_name == change_set_name
        )
        stack = self.stacks[change_set.stack_id]
        stack._parse_template()  # the change set's template, which the stack now has
        stack.description = stack.template_dict.get("Description")
        stack.output_map = stack._create_output_map()

    # Both are looked up as module globals by moto's parser (clean_json also by itself,
    # recursively), so replacing them there covers every use.
    patches.replace(parsing, "resource_class_from_type", resource_class_from_type)
    patches.replace(parsing, "clean_json", clean_json)
    patches.replace(CloudFormationBackend, "execute_change_set", execute_change_set)


def install_cloudformation_bridge(bridged_types: Mapping[str, type]) -> Undo:
    """The CloudFormation part alone (for tests of the bridge); returns the undo."""
    patches = Patches()
    cloudformation_bridge(patches, bridged_types)
    return patches.undo


def _quiet_logs(patches: Patches) -> None:
    """moto names each resource type it has no model for (bucket policies, topic policies;
    cdk_bridge.py models the ones that matter) and warns about each property it cannot
    parse; the interpreter logs every failed state at ERROR (executions' histories say
    it)."""
    moto_log = logging.getLogger("moto")
    moto_log.addFilter(_skipped_resource_types)
    patches.on_undo(functools.partial(moto_log.removeFilter, _skipped_resource_types))
    parser_log = logging.getLogger("moto.stepfunctions.parser")
    patches.on_undo(functools.partial(parser_log.setLevel, parser_log.level))
    parser_log.setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message="Tried to parse AWS::", category=UserWarning)
    filters: list[Any] = warnings.filters  # type: ignore[assignment]  # a list at run time
    entry = filters[0]

    def forget_filter() -> None:
        if entry in filters:
            filters.remove(entry)
            warnings._filters_mutated()  # type: ignore[attr-defined]  # as filterwarnings does

    patches.on_undo(forget_filter)


def _skipped_resource_types(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("No Moto CloudFormation support for")
