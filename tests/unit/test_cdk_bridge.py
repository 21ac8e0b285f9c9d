"""cdk_bridge: what moto's CloudFormation cannot model, deployed the way the CDK CLI deploys
(a change set, then ExecuteChangeSet) into moto's server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_cloud import cdk_bridge, fn_sub, moto_patches
from local_cloud.emulator import emulator_client
from tests.moto_server import moto_server

GATEWAY_URL = "http://localhost:4567"
STATE_MACHINE_ROLE = "arn:aws:iam::123456789012:role/machine"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        undo = moto_patches.install_cloudformation_bridge(
            cdk_bridge.bridged_types(aws_endpoint=url, gateway_url=GATEWAY_URL)
        )
        try:
            yield url
        finally:
            undo()


def client(endpoint: str, service: str) -> Any:
    return emulator_client(service, endpoint, "us-east-1")


def deploy_as_the_cli_does(endpoint: str, name: str, template: dict[str, Any]) -> dict[str, str]:
    cfn = client(endpoint, "cloudformation")
    cfn.create_change_set(
        StackName=name,
        ChangeSetName="cdk-deploy-change-set",
        ChangeSetType="CREATE",
        TemplateBody=json.dumps(template),
        Capabilities=["CAPABILITY_IAM"],
    )
    cfn.execute_change_set(StackName=name, ChangeSetName="cdk-deploy-change-set")
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Key": {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {
                "Description": "a key ring",
                "GenerateSecretString": {
                    "SecretStringTemplate": '{"current": "k1"}',
                    "GenerateStringKey": "k1",
                    "PasswordLength": 64,
                    "ExcludePunctuation": True,
                },
            },
        },
        "Topic": {"Type": "AWS::SNS::Topic"},
        "SigningKey": {
            "Type": "AWS::KMS::Key",
            "Properties": {
                "KeySpec": "ECC_NIST_P256",
                "KeyUsage": "SIGN_VERIFY",
                "Description": "signs manifests",
                "KeyPolicy": {"Version": "2012-10-17", "Statement": []},
            },
        },
        "Errors": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmActions": [{"Ref": "Topic"}],
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "EvaluationPeriods": 1,
                "MetricName": "Errors",
                "Namespace": "AWS/Lambda",
                "Period": 300,
                "Statistic": "Sum",
                "Threshold": 1,
            },
        },
        "Board": {
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {
                "DashboardBody": {
                    "Fn::Join": ["", ['{"alarm": "', {"Fn::GetAtt": ["Errors", "Arn"]}, '"}']]
                }
            },
        },
        "Api": {
            "Type": "AWS::ApiGatewayV2::Api",
            "Properties": {"Name": "api", "ProtocolType": "HTTP"},
        },
        "Integration": {
            "Type": "AWS::ApiGatewayV2::Integration",
            "Properties": {
                "ApiId": {"Ref": "Api"},
                "IntegrationType": "AWS_PROXY",
                "IntegrationUri": "arn:aws:lambda:us-east-1:123456789012:function:api",
                "PayloadFormatVersion": "2.0",
            },
        },
        "Authorizer": {
            "Type": "AWS::ApiGatewayV2::Authorizer",
            "Properties": {
                "ApiId": {"Ref": "Api"},
                "AuthorizerType": "REQUEST",
                "Name": "tokens",
                "IdentitySource": ["$request.header.Authorization"],
                "EnableSimpleResponses": True,
                "AuthorizerPayloadFormatVersion": "2.0",
            },
        },
        "Route": {
            "Type": "AWS::ApiGatewayV2::Route",
            "Properties": {
                "ApiId": {"Ref": "Api"},
                "RouteKey": "GET /v1/traces",
                "AuthorizationType": "CUSTOM",
                "AuthorizerId": {"Ref": "Authorizer"},
                "Target": {"Fn::Join": ["", ["integrations/", {"Ref": "Integration"}]]},
            },
        },
        "Stage": {
            "Type": "AWS::ApiGatewayV2::Stage",
            "Properties": {"ApiId": {"Ref": "Api"}, "StageName": "$default", "AutoDeploy": True},
        },
        "Machine": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "RoleArn": STATE_MACHINE_ROLE,
                "DefinitionString": {
                    "Fn::Sub": [
                        '{"StartAt": "S", "States": {"S": {"Type": "Pass", "Parameters": '
                        '{"name.$": "$$.Execution.Name", "key": "${KeyArn}"}, "End": true}}}',
                        {"KeyArn": {"Ref": "Key"}},
                    ]
                },
            },
        },
    },
    "Outputs": {
        "ApiEndpoint": {"Value": {"Fn::GetAtt": ["Api", "ApiEndpoint"]}},
        "KeyArn": {"Value": {"Ref": "Key"}},
        "AlarmArn": {"Value": {"Fn::GetAtt": ["Errors", "Arn"]}},
        "MachineArn": {"Value": {"Ref": "Machine"}},
        "SigningKeyArn": {"Value": {"Fn::GetAtt": ["SigningKey", "Arn"]}},
        "SigningKeyId": {"Value": {"Ref": "SigningKey"}},
    },
}


@pytest.fixture(scope="module")
def outputs(endpoint: str) -> dict[str, str]:
    return deploy_as_the_cli_does(endpoint, "bridged", TEMPLATE)


def test_a_change_set_deploy_reports_the_template_outputs(outputs: dict[str, str]) -> None:
    assert set(outputs) == {
        "ApiEndpoint",
        "KeyArn",
        "AlarmArn",
        "MachineArn",
        "SigningKeyArn",
        "SigningKeyId",
    }


def test_an_asymmetric_kms_key_keeps_its_spec_and_signs(
    endpoint: str, outputs: dict[str, str]
) -> None:
    kms = client(endpoint, "kms")
    metadata = kms.describe_key(KeyId=outputs["SigningKeyId"])["KeyMetadata"]
    assert metadata["Arn"] == outputs["SigningKeyArn"]
    assert (metadata["KeySpec"], metadata["KeyUsage"]) == ("ECC_NIST_P256", "SIGN_VERIFY")
    assert metadata["Description"] == "signs manifests"
    signed = kms.sign(
        KeyId=outputs["SigningKeyArn"],
        Message=b"statement",
        MessageType="RAW",
        SigningAlgorithm="ECDSA_SHA_256",
    )
    from prtrace.provenance.manifest import jwk_from_der

    jwk = jwk_from_der(kms.get_public_key(KeyId=outputs["SigningKeyArn"])["PublicKey"])
    from prtrace.provenance.manifest import verify_signature

    assert verify_signature(jwk, signed["Signature"], b"statement")


def test_the_secret_is_created_with_its_generated_value(
    endpoint: str, outputs: dict[str, str]
) -> None:
    secrets = client(endpoint, "secretsmanager")
    described = secrets.describe_secret(SecretId=outputs["KeyArn"])
    assert described["Name"].startswith("bridged-Key-")
    assert described["Description"] == "a key ring"
    value = json.loads(secrets.get_secret_value(SecretId=outputs["KeyArn"])["SecretString"])
    assert value["current"] == "k1"
    assert len(value["k1"]) == 64
    assert value["k1"].isalnum()


def test_the_alarm_exists_and_the_dashboard_names_it(
    endpoint: str, outputs: dict[str, str]
) -> None:
    cloudwatch = client(endpoint, "cloudwatch")
    (alarm,) = cloudwatch.describe_alarms(AlarmNamePrefix="bridged-Errors-")["MetricAlarms"]
    assert alarm["AlarmArn"] == outputs["AlarmArn"]
    assert alarm["MetricName"] == "Errors"
    assert alarm["AlarmActions"][0].startswith("arn:aws:sns:us-east-1:123456789012:bridged-")
    (board,) = cloudwatch.list_dashboards()["DashboardEntries"]
    body = cloudwatch.get_dashboard(DashboardName=board["DashboardName"])["DashboardBody"]
    assert json.loads(body) == {"alarm": outputs["AlarmArn"]}


def test_the_http_api_is_in_the_control_plane_and_its_endpoint_is_the_local_gateway(
    endpoint: str, outputs: dict[str, str]
) -> None:
    assert outputs["ApiEndpoint"] == GATEWAY_URL
    apis = client(endpoint, "apigatewayv2")
    (api,) = apis.get_apis()["Items"]
    (route,) = apis.get_routes(ApiId=api["ApiId"])["Items"]
    (integration,) = apis.get_integrations(ApiId=api["ApiId"])["Items"]
    assert route["RouteKey"] == "GET /v1/traces"
    assert route["Target"] == f"integrations/{integration['IntegrationId']}"
    authorizer = apis.get_authorizer(ApiId=api["ApiId"], AuthorizerId=route["AuthorizerId"])
    assert authorizer["Name"] == "tokens"
    assert [s["StageName"] for s in apis.get_stages(ApiId=api["ApiId"])["Items"]] == ["$default"]


def test_fn_sub_keeps_the_context_object(endpoint: str, outputs: dict[str, str]) -> None:
    """The state machine lands in moto's plain backend (stepfunctions.hand_to_interpreter
    moves it); the definition is what CloudFormation itself would have made."""
    from moto.stepfunctions.models import stepfunctions_backends

    machines = stepfunctions_backends["123456789012"]["us-east-1"].state_machines
    (machine,) = [m for m in machines if m.arn == outputs["MachineArn"]]
    parameters = json.loads(machine.definition)["States"]["S"]["Parameters"]
    assert parameters == {"name.$": "$$.Execution.Name", "key": outputs["KeyArn"]}


def test_deleting_the_stack_deletes_the_bridged_resources(endpoint: str) -> None:
    deploy_as_the_cli_does(endpoint, "short-lived", {"Resources": TEMPLATE["Resources"]})
    client(endpoint, "cloudformation").delete_stack(StackName="short-lived")
    alarms = client(endpoint, "cloudwatch").describe_alarms(AlarmNamePrefix="short-lived-")
    assert alarms["MetricAlarms"] == []
    listed = client(endpoint, "secretsmanager").list_secrets()["SecretList"]
    assert not [s for s in listed if s["Name"].startswith("short-lived-")]


def test_image_assets_are_recorded_where_the_cli_looks_for_them(
    endpoint: str, tmp_path: Path
) -> None:
    repository = "cdk-hnb659fds-container-assets-123456789012-us-east-1"
    ecr = client(endpoint, "ecr")
    ecr.create_repository(repositoryName=repository)
    manifest = tmp_path / "stack.assets.json"
    manifest.write_text(
        json.dumps(
            {
                "version": "52.0.0",
                "files": {},
                "dockerImages": {
                    "abc123": {
                        "source": {"directory": "asset.abc123"},
                        "destinations": {
                            "123456789012-us-east-1": {
                                "repositoryName": (
                                    "cdk-hnb659fds-container-assets-${AWS::AccountId}-"
                                    "${AWS::Region}"
                                ),
                                "imageTag": "abc123",
                            }
                        },
                    }
                },
            }
        )
    )
    first = cdk_bridge.register_container_images(manifest, aws_endpoint=endpoint)
    again = cdk_bridge.register_container_images(manifest, aws_endpoint=endpoint)
    assert first == again
    assert first[0].endswith(f"/{repository}:abc123")
    # What the CLI's publisher asks before it would build and push (cdk-assets imageExists).
    images = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": "abc123"}])
    assert [i["imageTags"] for i in images["imageDetails"]] == [["abc123"]]


def test_undo_restores_moto() -> None:
    from moto.cloudformation import parsing
    from moto.cloudformation.models import CloudFormationBackend

    before = (
        parsing.resource_class_from_type,
        parsing.clean_json,
        CloudFormationBackend.execute_change_set,
    )
    undo = moto_patches.install_cloudformation_bridge(
        cdk_bridge.bridged_types(aws_endpoint="http://localhost:1", gateway_url=GATEWAY_URL)
    )
    bridged = parsing.resource_class_from_type("AWS::SecretsManager::Secret")
    assert issubclass(bridged, cdk_bridge.Secret)
    assert bridged.settings is not None
    assert bridged.settings.aws_endpoint == "http://localhost:1"
    assert cdk_bridge.Secret.settings is None  # bound copies: nothing process-wide set
    undo()
    after = (
        parsing.resource_class_from_type,
        parsing.clean_json,
        CloudFormationBackend.execute_change_set,
    )
    assert after == before


def test_sub_as_join_is_the_value_cloudformation_substitutes() -> None:
    text = (
        '{"At": "$$.State.EnteredTime", "Fn": "${FnArn}", "R": "${AWS::Region}", '
        '"L": "${!Literal}", "A": "${Fn.Arn}", "L2": "${!Again}"}'
    )
    joined = fn_sub.sub_as_join(text, {"FnArn": {"Fn::GetAtt": ["Fn", "Arn"]}})
    assert joined == {
        "Fn::Join": [
            "",
            [
                '{"At": "$$.State.EnteredTime", "Fn": "',
                {"Fn::GetAtt": ["Fn", "Arn"]},
                '", "R": "',
                {"Ref": "AWS::Region"},
                '", "L": "${Literal}", "A": "',
                {"Fn::GetAtt": ["Fn", "Arn"]},
                '", "L2": "${Again}"}',
            ],
        ]
    }


@pytest.mark.usefixtures("endpoint")
def test_only_a_sub_with_dollar_dollar_is_evaluated_differently() -> None:
    from moto.cloudformation.parsing import clean_json

    assert clean_json({"Fn::Sub": ["$$.State ${X}", {"X": "x"}]}, {}) == "$$.State x"
    assert clean_json({"Fn::Sub": ["${X}-$.State", {"X": "x"}]}, {}) == "x-$.State"


def test_create_stack_deploys_the_bridged_types_too(endpoint: str) -> None:
    """The local cloud's own deployer (deploy.py) creates the stack with CreateStack."""
    cfn = client(endpoint, "cloudformation")
    cfn.create_stack(StackName="created", TemplateBody=json.dumps(TEMPLATE))
    stack = cfn.describe_stacks(StackName="created")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["ApiEndpoint"] == GATEWAY_URL
    assert outputs["KeyArn"].startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:")
