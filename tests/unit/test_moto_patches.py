"""local_cloud/moto_patches.py, the one module that changes moto's code, and its
canaries: the local cloud leans on moto internals, and an upgrade that moves one, or fixes
what a patch works around, must fail here, loudly, not as a hang or a silent echo in the
local cloud. moto is pinned exactly for that reason."""

from __future__ import annotations

import inspect
import logging
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import boto3
import moto
import pytest
from moto import mock_aws
from moto.awslambda.models import LambdaFunction
from moto.cloudformation.parsing import get_model_map
from moto.ecs.models import Container, EC2ContainerServiceBackend, Task
from moto.moto_api import state_manager

from local_cloud import cdk_bridge, moto_patches

ROOT = Path(__file__).resolve().parents[2]


def test_moto_is_pinned_exactly_to_the_version_these_checks_were_written_for() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = [d for d in pyproject["dependency-groups"]["dev"] if d.startswith("moto")]
    assert pins == ["moto[server,dynamodb,s3]==5.2.5"]
    assert moto.__version__ == "5.2.5"


def test_lambda_invocations_go_through_invoke_lambda() -> None:
    """moto_patches.lambda_invocations replaces LambdaFunction._invoke_lambda(self, event)
    -> (payload, errored, logs), and invoke() must still call it."""
    parameters = list(inspect.signature(LambdaFunction._invoke_lambda).parameters)
    assert parameters == ["self", "event"]
    assert "self._invoke_lambda(" in inspect.getsource(LambdaFunction.invoke)


def test_the_function_attributes_the_workers_read_exist() -> None:
    source = inspect.getsource(LambdaFunction.__init__)
    for attribute in (
        "self.code_bytes",
        "self.function_name",
        "self.handler",
        "self.environment_vars",
        "self.timeout",
        "self.memory_size",
        "self.function_arn",
    ):
        assert attribute in source, attribute


def test_ecs_run_task_and_the_task_state_the_executor_drives() -> None:
    parameters = inspect.signature(EC2ContainerServiceBackend.run_task).parameters
    assert list(parameters)[:3] == ["self", "cluster_str", "task_definition_str"]
    assert isinstance(Task.last_status, property)
    assert Task.last_status.fset is not None
    init = inspect.getsource(Task.__init__)
    assert "self.containers = [Container(task_definition)]" in init
    assert "self.overrides" in init
    assert "self.exitCode" in inspect.getsource(Container.__init__)
    assert "advance()" in inspect.getsource(EC2ContainerServiceBackend.describe_tasks)
    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
    assert state_manager.get_transition("ecs::task")["times"] == 10**9
    state_manager.unset_transition("ecs::task")


def test_cloudformation_still_models_what_the_local_cloud_relies_on() -> None:
    for resource_type in (
        "AWS::Lambda::Function",
        "AWS::Lambda::LayerVersion",
        "AWS::DynamoDB::Table",
        "AWS::S3::Bucket",
        "AWS::IAM::Role",
        "AWS::StepFunctions::StateMachine",
        "AWS::ECS::TaskDefinition",
        "AWS::CloudWatch::Dashboard",
    ):
        assert resource_type in get_model_map(), resource_type


def test_cloudformation_drops_function_layers() -> None:
    """The local cloud reads layers from the template because moto ignores them."""
    source = inspect.getsource(LambdaFunction.create_from_cloudformation_json)
    assert '"Layers"' not in source


def test_cloudformation_state_machines_land_where_the_local_cloud_fetches_them() -> None:
    """stepfunctions.hand_to_interpreter reads the plain backend's machines and recreates
    them in the interpreter's backend, which serves the API when executions are on."""
    from moto.stepfunctions import responses
    from moto.stepfunctions.models import StateMachine
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    served_by = inspect.getsource(responses)
    assert "execute_state_machine" in served_by
    assert "stepfunctions_parser_backends" in served_by
    created_in = inspect.getsource(StateMachine.create_from_cloudformation_json)
    assert "stepfunctions_backends[account_id][region_name]" in created_in
    parameters = inspect.signature(StepFunctionsParserBackend.create_state_machine).parameters
    for name in ("name", "definition", "roleArn", "loggingConfiguration", "tracingConfiguration"):
        assert name in parameters


def test_fn_sub_still_halves_dollar_dollar() -> None:
    """cdk_bridge evaluates such Fn::Sub values as the equivalent Fn::Join because of this;
    when moto fixes it, this fails and the workaround can go."""
    from moto.cloudformation.parsing import clean_json

    value = clean_json({"Fn::Sub": ["$$.State ${X}", {"X": "x"}]}, {})
    assert value == "$.State x"


def test_the_interpreter_still_leaves_ecs_normalisation_out() -> None:
    """moto_patches.stepfunctions_interpreter wires the interpreter's own shape helpers
    into its ECS integration; these are the hooks and helpers it relies on."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service,
        state_task_service_ecs,
    )

    base = state_task_service.StateTaskService
    ecs = state_task_service_ecs.StateTaskServiceEcs
    assert "_normalise_parameters" not in ecs.__dict__
    assert "_normalise_response" not in ecs.__dict__
    for helper in ("_to_boto_request", "_from_boto_response", "_get_boto_service_action"):
        assert helper in base.__dict__, helper
    assert "self._normalise_parameters(normalised_parameters)" in inspect.getsource(base)
    assert 'service_action_name="describe_tasks"' in inspect.getsource(ecs)


def test_the_interpreter_still_returns_every_stopped_ecs_task_as_a_success() -> None:
    """moto_patches wraps the ECS `.sync` resolver to fail a task that did not end with
    every container exiting 0, as AWS does: moto's returns any STOPPED task."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_ecs,
    )

    resolver = inspect.getsource(state_task_service_ecs.StateTaskServiceEcs._build_sync_resolver)
    assert 'if last_status == "STOPPED":' in resolver
    assert "ExitCode" not in resolver
    assert "raise" not in resolver


def test_cloudformation_still_lacks_what_the_cdk_bridge_models() -> None:
    """If moto learns to deploy one of these, cdk_bridge.py should stop modelling it."""
    from local_cloud.cdk_bridge import BRIDGED

    for resource_type in BRIDGED:
        if resource_type == "AWS::KMS::Key":
            continue  # moto models it, as a symmetric key whatever the template says:
        assert resource_type not in get_model_map(), resource_type
    from moto.kms.models import Key

    source = inspect.getsource(Key.create_from_cloudformation_json)
    assert 'key_spec="SYMMETRIC_DEFAULT"' in source
    assert 'key_usage="ENCRYPT_DECRYPT"' in source


def test_the_parser_looks_up_what_the_cdk_bridge_replaces_as_module_globals() -> None:
    """moto_patches.cloudformation_bridge replaces parsing.resource_class_from_type and
    parsing.clean_json; every use must go through the module's globals for that to reach
    it."""
    from moto.cloudformation import parsing

    assert "resource_class_from_type(resource_type)" in inspect.getsource(parsing.parse_resource)
    assert "resource_class_from_type(resource_type)" in inspect.getsource(
        parsing.ResourceMap.validate_outputs
    )
    assert "clean_json(resource_json, resources_map)" in inspect.getsource(parsing.parse_resource)
    assert "clean_json(" in inspect.getsource(parsing.clean_json).split('"""', 2)[2]


def test_an_executed_change_set_still_leaves_the_outputs_as_they_were() -> None:
    """moto_patches re-evaluates them after ExecuteChangeSet; when moto does, this fails."""
    from moto.cloudformation.models import CloudFormationBackend

    assert "output_map" not in inspect.getsource(CloudFormationBackend.execute_change_set)


def test_stack_deletion_asks_each_resource_to_delete_itself_first() -> None:
    """cdk_bridge's models delete themselves (with their resolved properties)."""
    from moto.cloudformation.parsing import ResourceMap

    source = inspect.getsource(ResourceMap._delete_resource)
    assert "parsed_resource.delete(self._account_id, self._region_name)" in source


def test_the_interpreter_finds_the_emulator_through_a_module_global_port() -> None:
    """moto_patches points the interpreter's clients at the local cloud's emulator by
    replacing boto_client.moto_server_port (moto reads MOTO_PORT there, which the local
    cloud does not set)."""
    from moto.stepfunctions.parser.asl.utils import boto_client

    source = inspect.getsource(boto_client.boto_client_for)
    assert 'f"http://localhost:{moto_server_port()}"' in source
    assert "MOTO_PORT" in inspect.getsource(boto_client.moto_server_port)


def test_an_ended_execution_still_reports_through_terminated() -> None:
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    assert "terminated" in BaseExecutionWorkerCommunication.__dict__
    assert inspect.getsource(BaseExecutionWorkerCommunication.terminated).count("\n") <= 3


def test_dynamodb_still_copies_whole_tables_for_a_transaction() -> None:
    """The emulator's patches back up the items a transaction writes instead; when moto
    stops deep-copying tables through its module's `copy`, they can go."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    assert "copy.deepcopy(" in inspect.getsource(DynamoDBBackend.transact_write_items)
    parameters = list(inspect.signature(Table.query).parameters)
    assert parameters[:7] == [
        "self",
        "hash_key",
        "range_comparison",
        "range_objs",
        "limit",
        "exclusive_start_key",
        "scan_index_forward",
    ]
    assert "super().call_action()" in inspect.getsource(DynamoHandler.call_action)
    assert "self.all_items()" in inspect.getsource(Table.query)


def test_the_server_still_lists_its_services_per_request_over_http_1_0() -> None:
    from moto.moto_server import werkzeug_app
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    assert "list_of_moto_modules()" in inspect.getsource(werkzeug_app)
    assert MotoRequestHandler.protocol_version == "HTTP/1.0"


# -- install and undo -------------------------------------------------------------------


class _Tasks:
    """Runs each task as `exit_code` (None: it fails to start) after `release` is set."""

    def __init__(self, exit_code: int | None) -> None:
        self.exit_code = exit_code
        self.release = threading.Event()

    def container_run(self, backend: Any, task: Any) -> str:
        return str(task.task_arn)

    def execute(self, run: Any) -> moto_patches.TaskStopped:
        assert self.release.wait(10)
        if self.exit_code is None:
            reason = "CannotPullContainerError: pull access denied"
            return moto_patches.TaskStopped("TaskFailedToStart", reason, None, reason)
        return moto_patches.TaskStopped(
            "EssentialContainerExited", "Essential container in task exited", self.exit_code
        )


def _install(tasks: Any = None) -> moto_patches.Undo:
    return moto_patches.install(
        aws_endpoint="http://localhost:45666",
        bridged_types=cdk_bridge.bridged_types(
            aws_endpoint="http://localhost:45666", gateway_url="http://localhost:45667"
        ),
        invoke_lambda=lambda function, event: ("{}", False, ""),
        ecs_tasks=tasks or _Tasks(0),
        execution_ended=lambda execution: None,
    )


def _patched_attributes() -> dict[str, Any]:
    from moto.cloudformation import parsing
    from moto.cloudformation.models import CloudFormationBackend
    from moto.ecs.responses import EC2ContainerServiceResponse
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_ecs,
    )
    from moto.stepfunctions.parser.asl.utils import boto_client
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    ecs_service = state_task_service_ecs.StateTaskServiceEcs
    return {
        "invoke_lambda": vars(LambdaFunction).get("_invoke_lambda"),
        "run_task": vars(EC2ContainerServiceBackend).get("run_task"),
        "ecs_call_action": vars(EC2ContainerServiceResponse).get("call_action"),
        "port": vars(boto_client).get("moto_server_port"),
        "normalise_parameters": vars(ecs_service).get("_normalise_parameters"),
        "normalise_response": vars(ecs_service).get("_normalise_response"),
        "sync_resolver": vars(ecs_service).get("_build_sync_resolver"),
        "terminated": vars(BaseExecutionWorkerCommunication).get("terminated"),
        "resource_class_from_type": parsing.resource_class_from_type,
        "clean_json": parsing.clean_json,
        "execute_change_set": vars(CloudFormationBackend).get("execute_change_set"),
        "transition": state_manager.get_transition("ecs::task"),
        "moto_filters": list(logging.getLogger("moto").filters),
        "parser_level": logging.getLogger("moto.stepfunctions.parser").level,
    }


def test_undo_restores_everything_install_changed() -> None:
    from moto.stepfunctions.parser.asl.utils import boto_client

    before = _patched_attributes()
    undo = _install()
    try:
        during = _patched_attributes()
        changed = {name for name in before if during[name] != before[name]}
        assert changed == set(before)  # each one of them is installed
        assert boto_client.moto_server_port() == "45666"
    finally:
        undo()
    assert _patched_attributes() == before


def test_one_local_cloud_per_process() -> None:
    undo = _install()
    try:
        with pytest.raises(RuntimeError, match="another local cloud"):
            _install()
    finally:
        undo()
    _install()()  # released by the undo


def test_the_emulator_patches_nest_and_the_last_user_undoes_them() -> None:
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    original, original_call = Table.query, DynamoHandler.call_action
    with moto_patches.emulator_patches():
        patched = Table.query
        assert patched is not original
        assert DynamoHandler.call_action is not original_call
        with moto_patches.emulator_patches():
            assert Table.query is patched
        assert Table.query is patched
    assert Table.query is original
    assert DynamoHandler.call_action is original_call


def _ecs_task(ecs: Any) -> str:
    ecs.create_cluster(clusterName="c")
    ecs.register_task_definition(
        family="f",
        containerDefinitions=[{"name": "main", "image": "img", "memory": 128, "command": ["true"]}],
    )
    return str(
        ecs.run_task(cluster="c", taskDefinition="f", launchType="FARGATE")["tasks"][0]["taskArn"]
    )


def test_a_task_runs_until_its_executor_ends_then_stops_with_its_exit_code() -> None:
    tasks = _Tasks(exit_code=3)
    undo = _install(tasks)
    try:
        with mock_aws():
            ecs = boto3.client("ecs", region_name="us-east-1")
            arn = _ecs_task(ecs)
            for _ in range(3):  # moto would have stopped it at the first DescribeTasks
                task = ecs.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]
                assert task["lastStatus"] == "RUNNING"
            tasks.release.set()
            deadline = time.monotonic() + 10
            while task["lastStatus"] != "STOPPED" and time.monotonic() < deadline:
                time.sleep(0.02)
                task = ecs.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]
            assert task["lastStatus"] == "STOPPED"
            assert task["containers"][0]["exitCode"] == 3
            assert task["stoppedReason"] == "Essential container in task exited"
            assert task["stopCode"] == "EssentialContainerExited"
    finally:
        tasks.release.set()
        undo()


def test_a_task_whose_container_never_started_stops_without_an_exit_code() -> None:
    tasks = _Tasks(exit_code=None)
    tasks.release.set()
    undo = _install(tasks)
    try:
        with mock_aws():
            ecs = boto3.client("ecs", region_name="us-east-1")
            arn = _ecs_task(ecs)
            deadline = time.monotonic() + 10
            task = ecs.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]
            while task["lastStatus"] != "STOPPED" and time.monotonic() < deadline:
                time.sleep(0.02)
                task = ecs.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]
            assert task["stopCode"] == "TaskFailedToStart"
            assert task["stoppedReason"].startswith("CannotPullContainerError")
            (container,) = task["containers"]
            assert "exitCode" not in container
            assert container["reason"] == task["stoppedReason"]
    finally:
        undo()


def test_ecs_requests_wait_while_a_local_cloud_thread_changes_moto() -> None:
    undo = _install()
    try:
        with mock_aws():
            ecs = boto3.client("ecs", region_name="us-east-1")
            answered = threading.Event()

            def list_clusters() -> None:
                ecs.list_clusters()
                answered.set()

            with moto_patches.MOTO_LOCK:
                threading.Thread(target=list_clusters, daemon=True).start()
                assert not answered.wait(0.3)
            assert answered.wait(10)
    finally:
        undo()


def test_lambda_still_lacks_get_account_settings_which_the_emulator_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botocore.exceptions import ClientError

    with mock_aws():
        client = boto3.client("lambda", region_name="us-east-1")
        with pytest.raises(ClientError, match="Not yet implemented"):
            client.get_account_settings()
    monkeypatch.setenv(moto_patches.LAMBDA_QUOTA_VARIABLE, "10")
    with moto_patches.emulator_patches(), mock_aws():
        limit = boto3.client("lambda", region_name="us-east-1").get_account_settings()
        assert limit["AccountLimit"]["ConcurrentExecutions"] == 10
        assert limit["AccountLimit"]["UnreservedConcurrentExecutions"] == 10
