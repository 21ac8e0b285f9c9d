"""QA's private PyPI proxy in the operators' template: a CodeArtifact repository with PyPI
as its upstream, the QA VPC's CodeArtifact endpoints admitting only the QA task and only
this repository, the task told the index (never a token), and the grant for whoever hands
out the token read-only."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import App, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from infra_cdk.app import build_app
from infra_cdk.config import QA_STATE_TIMEOUT_S, StackConfig
from infra_cdk.package_proxy import PackageProxy
from prtrace.qa.package_index import codeartifact_index_url
from tests.infra.cfn_values import ACCOUNT, REGION, TemplateValues


def _qa_container(template: Template) -> dict[str, Any]:
    definitions = template.find_resources("AWS::ECS::TaskDefinition")
    (qa,) = [d for k, d in definitions.items() if k.startswith("Pipeline")]
    (container,) = qa["Properties"]["ContainerDefinitions"]
    return dict(container)


def test_a_codeartifact_repository_proxies_pypi(template: Template) -> None:
    (domain,) = template.find_resources("AWS::CodeArtifact::Domain").values()
    (repository,) = template.find_resources("AWS::CodeArtifact::Repository").values()
    assert domain["Properties"]["DomainName"] == "prtrace-test"
    assert repository["Properties"]["DomainName"] == "prtrace-test"
    assert repository["Properties"]["ExternalConnections"] == ["public:pypi"]
    # created after its domain (it names the domain by name only)
    (domain_id,) = template.find_resources("AWS::CodeArtifact::Domain")
    assert domain_id in repository["DependsOn"]


def test_the_qa_task_installs_from_the_proxy_and_gets_no_token(
    template: Template, template_json: dict[str, Any]
) -> None:
    container = _qa_container(template)
    environment = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert environment["PRTRACE_QA_DEPENDENCY_NETWORK"] == "true"
    url = TemplateValues(template_json).resolve(environment["PRTRACE_QA_PACKAGE_INDEX"])
    (repository,) = template.find_resources("AWS::CodeArtifact::Repository").values()
    assert url == codeartifact_index_url(
        domain="prtrace-test",
        owner=ACCOUNT,
        repository=repository["Properties"]["RepositoryName"],
        region=REGION,
    )
    assert "PRTRACE_QA_PACKAGE_INDEX_TOKEN" not in environment  # it comes with the grant


def _endpoint(template: Template, service: str) -> dict[str, Any]:
    endpoints = template.find_resources("AWS::EC2::VPCEndpoint")
    (found,) = [
        e for e in endpoints.values() if service in json.dumps(e["Properties"]["ServiceName"])
    ]
    return dict(found)


def test_the_repositories_endpoint_admits_only_the_qa_task_and_this_repository(
    template: Template,
) -> None:
    endpoint = _endpoint(template, ".codeartifact.repositories")
    properties = endpoint["Properties"]
    assert properties["PrivateDnsEnabled"] is True
    ((group_id,),) = [[g["Fn::GetAtt"][0] for g in properties["SecurityGroupIds"]]]
    groups = template.find_resources("AWS::EC2::SecurityGroup")
    group = groups[group_id]["Properties"]
    assert "SecurityGroupIngress" not in group  # only the rule below, from the QA task
    ingress = [
        r["Properties"]
        for r in template.find_resources("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}
    ]
    qa_group = _qa_task_group(template)
    assert ingress == [
        {
            "Description": "the QA task's dependency step",
            "FromPort": 443,
            "GroupId": {"Fn::GetAtt": [group_id, "GroupId"]},
            "IpProtocol": "tcp",
            "SourceSecurityGroupId": {"Fn::GetAtt": [qa_group, "GroupId"]},
            "ToPort": 443,
        }
    ]
    (statement,) = properties["PolicyDocument"]["Statement"]
    assert statement["Action"] == "codeartifact:ReadFromRepository"
    assert "Condition" not in statement
    resource = json.dumps(statement["Resource"])
    assert ":repository/prtrace-test/qa-pypi" in resource
    assert "root" in json.dumps(statement["Principal"])  # this account's principals only
    # created after the API endpoint, whose private DNS zone its own sits under
    api_id = next(
        k
        for k, e in template.find_resources("AWS::EC2::VPCEndpoint").items()
        if ".codeartifact.api" in json.dumps(e["Properties"]["ServiceName"])
    )
    assert api_id in endpoint["DependsOn"]


def _qa_task_group(template: Template) -> str:
    definitions = template.find_resources("AWS::StepFunctions::StateMachine")
    machine = next(d for k, d in definitions.items() if k.startswith("Pipeline"))
    _, substitutions = machine["Properties"]["DefinitionString"]["Fn::Sub"]
    return str(substitutions["QaSecurityGroupId"]["Fn::GetAtt"][0])


def test_no_one_in_the_vpc_may_call_the_codeartifact_api(template: Template) -> None:
    properties = _endpoint(template, ".codeartifact.api")["Properties"]
    assert properties["PrivateDnsEnabled"] is True
    for ref in properties["SecurityGroupIds"]:
        group_id = ref["Fn::GetAtt"][0]
        group = template.find_resources("AWS::EC2::SecurityGroup")[group_id]["Properties"]
        assert "SecurityGroupIngress" not in group
        assert not [
            r
            for r in template.find_resources("AWS::EC2::SecurityGroupIngress").values()
            if r["Properties"]["GroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}
        ]
    (statement,) = properties["PolicyDocument"]["Statement"]
    assert statement["Action"] == "codeartifact:GetAuthorizationToken"
    assert ":domain/prtrace-test" in json.dumps(statement["Resource"])


def test_the_token_grant_is_read_only_and_for_this_repository() -> None:
    app = App()
    stack = Stack(app, "proxy-grant")
    vpc = ec2.Vpc(stack, "Vpc", nat_gateways=0, max_azs=1)
    proxy = PackageProxy(stack, "Proxy", config=StackConfig(stage="test"), vpc=vpc)
    role = iam.Role(stack, "PrepareQa", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    proxy.grant_read_token(role)
    policies = Template.from_stack(stack).find_resources("AWS::IAM::Policy")
    (policy,) = policies.values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    actions = {s["Action"]: s for s in statements}
    assert set(actions) == {
        "codeartifact:GetAuthorizationToken",
        "codeartifact:ReadFromRepository",
        "sts:GetServiceBearerToken",
    }
    assert ":domain/prtrace-test" in json.dumps(actions["codeartifact:GetAuthorizationToken"])
    assert ":repository/prtrace-test/qa-pypi" in json.dumps(
        actions["codeartifact:ReadFromRepository"]
    )
    assert actions["sts:GetServiceBearerToken"]["Condition"] == {
        "StringEquals": {"sts:AWSServiceName": "codeartifact.amazonaws.com"}
    }
    assert proxy.token_environment["PRTRACE_QA_CODEARTIFACT_TOKEN_DURATION_S"] == str(
        QA_STATE_TIMEOUT_S
    )


def test_without_the_proxy_the_qa_task_installs_nothing(tmp_path: Any) -> None:
    app = build_app(
        {"stage": "test", "qa_package_proxy": "false"}, build_deps=False, outdir=str(tmp_path)
    )
    template = Template.from_stack(app.node.find_child("prtrace-test"))  # type: ignore[arg-type]
    assert not template.find_resources("AWS::CodeArtifact::Domain")
    assert "codeartifact" not in json.dumps(template.find_resources("AWS::EC2::VPCEndpoint"))
    environment = {e["Name"]: e["Value"] for e in _qa_container(template)["Environment"]}
    assert environment["PRTRACE_QA_DEPENDENCY_NETWORK"] == "false"
    assert "PRTRACE_QA_PACKAGE_INDEX" not in environment
