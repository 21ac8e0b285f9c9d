"""The local cloud leans on moto internals; an upgrade that moves one must fail here, loudly,
not as a hang or a silent echo in the local cloud. moto is pinned exactly for that reason."""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path

import moto
from moto.awslambda.models import LambdaFunction
from moto.cloudformation.parsing import get_model_map
from moto.ecs.models import Container, EC2ContainerServiceBackend, Task
from moto.moto_api import state_manager

ROOT = Path(__file__).resolve().parents[2]


def test_moto_is_pinned_exactly_to_the_version_these_checks_were_written_for() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = [d for d in pyproject["dependency-groups"]["dev"] if d.startswith("moto")]
    assert pins == ["moto[server,dynamodb,s3]==5.2.5"]
    assert moto.__version__ == "5.2.5"


def test_lambda_invocations_go_through_invoke_lambda() -> None:
    """lambda_runtime replaces LambdaFunction._invoke_lambda(self, event) -> (payload,
    errored, logs), and invoke() must still call it."""
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
    """stepfunctions.normalise_ecs_integration wires the interpreter's own shape helpers
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


def test_cloudformation_still_lacks_what_the_cdk_bridge_models() -> None:
    """If moto learns to deploy one of these, cdk_bridge.py should stop modelling it."""
    from infra_cdk.local.cdk_bridge import BRIDGED

    for resource_type in BRIDGED:
        if resource_type == "AWS::KMS::Key":
            continue  # moto models it, as a symmetric key whatever the template says:
        assert resource_type not in get_model_map(), resource_type
    from moto.kms.models import Key

    source = inspect.getsource(Key.create_from_cloudformation_json)
    assert 'key_spec="SYMMETRIC_DEFAULT"' in source
    assert 'key_usage="ENCRYPT_DECRYPT"' in source


def test_the_parser_looks_up_what_the_cdk_bridge_replaces_as_module_globals() -> None:
    """cdk_bridge.install replaces parsing.resource_class_from_type and parsing.clean_json;
    every use must go through the module's globals for that to reach it."""
    from moto.cloudformation import parsing

    assert "resource_class_from_type(resource_type)" in inspect.getsource(parsing.parse_resource)
    assert "resource_class_from_type(resource_type)" in inspect.getsource(
        parsing.ResourceMap.validate_outputs
    )
    assert "clean_json(resource_json, resources_map)" in inspect.getsource(parsing.parse_resource)
    assert "clean_json(" in inspect.getsource(parsing.clean_json).split('"""', 2)[2]


def test_an_executed_change_set_still_leaves_the_outputs_as_they_were() -> None:
    """cdk_bridge re-evaluates them after ExecuteChangeSet; when moto does, this fails."""
    from moto.cloudformation.models import CloudFormationBackend

    assert "output_map" not in inspect.getsource(CloudFormationBackend.execute_change_set)


def test_stack_deletion_asks_each_resource_to_delete_itself_first() -> None:
    """cdk_bridge's models delete themselves (with their resolved properties)."""
    from moto.cloudformation.parsing import ResourceMap

    source = inspect.getsource(ResourceMap._delete_resource)
    assert "parsed_resource.delete(self._account_id, self._region_name)" in source
