"""The tasks' network in the synthesized template: the S3 endpoint admits only the data
bucket and ECR's layer bucket, the DNS Firewall resolves only the AWS names the tasks use,
and the QA and export tasks have their own subnets and security groups, each endpoint
admitting only the tasks that need it (infra_cdk/network.py)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import boto3
from aws_cdk import App, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Annotations, Match, Template
from botocore.config import Config

from infra_cdk.config import StackConfig
from infra_cdk.network import TaskNetwork
from tests.infra.cfn_values import REGION, TemplateValues
from tests.infra.conftest import PREFIX_LISTS

LAYER_BUCKET_OBJECTS = f"arn:aws:s3:::prod-{REGION}-starport-layer-bucket/*"


# ---- what the template says ----------------------------------------------------------------


def _machine_substitutions(template: Template, prefix: str) -> dict[str, Any]:
    machines = template.find_resources("AWS::StepFunctions::StateMachine")
    (machine,) = [m for k, m in machines.items() if k.startswith(prefix)]
    return dict(machine["Properties"]["DefinitionString"]["Fn::Sub"][1])


def _task_groups(template: Template) -> dict[str, str]:
    """The security group logical id of each task, as its state machine runs it."""
    qa = _machine_substitutions(template, "Pipeline")["QaSecurityGroupId"]
    export = _machine_substitutions(template, "Export")["SecurityGroupId"]
    return {"qa": qa["Fn::GetAtt"][0], "export": export["Fn::GetAtt"][0]}


def _endpoints(template: Template) -> dict[str, dict[str, Any]]:
    """Each VPC endpoint's properties by its service (`s3`, `ecr.api`, `kms`...)."""
    found = {}
    for endpoint in template.find_resources("AWS::EC2::VPCEndpoint").values():
        name = endpoint["Properties"]["ServiceName"]["Fn::Join"][1][-1]  # ".ecr.api"
        found[name.removeprefix(".")] = endpoint["Properties"]
    return found


def _group_of(endpoint: dict[str, Any]) -> str:
    (group,) = endpoint["SecurityGroupIds"]
    return str(group["Fn::GetAtt"][0])


def _rules(template: Template, kind: str, group: str) -> list[dict[str, Any]]:
    """The standalone ingress/egress rules of one security group."""
    return [
        r["Properties"]
        for r in template.find_resources(f"AWS::EC2::SecurityGroup{kind}").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [group, "GroupId"]}
    ]


def _peer_groups(rules: list[dict[str, Any]], key: str) -> set[str]:
    assert all(r["IpProtocol"] == "tcp" and r["FromPort"] == r["ToPort"] == 443 for r in rules)
    return {r[key]["Fn::GetAtt"][0] for r in rules}


def _subnet_group(template: Template, logical_id: str) -> str:
    """The subnet group (`qa`, `export`, `endpoints`) a subnet belongs to."""
    tags = template.find_resources("AWS::EC2::Subnet")[logical_id]["Properties"]["Tags"]
    return str(next(t["Value"] for t in tags if t["Key"] == "aws-cdk:subnet-name"))


def _route_table_groups(template: Template, route_tables: list[dict[str, str]]) -> list[str]:
    associations = template.find_resources("AWS::EC2::SubnetRouteTableAssociation").values()
    subnet_of = {
        a["Properties"]["RouteTableId"]["Ref"]: a["Properties"]["SubnetId"]["Ref"]
        for a in associations
    }
    return sorted(_subnet_group(template, subnet_of[t["Ref"]]) for t in route_tables)


# ---- the S3 and DynamoDB gateway endpoints -------------------------------------------------


def test_the_s3_endpoint_admits_only_the_data_bucket_and_ecr_layers(
    template: Template, template_json: dict[str, Any]
) -> None:
    s3_endpoint = _endpoints(template)["s3"]
    values = TemplateValues(template_json)
    (bucket_id,) = [
        k for k in template.find_resources("AWS::S3::Bucket") if k.startswith("StorageData")
    ]
    bucket = values.get_att(bucket_id, "Arn")
    admitted = {
        (json.dumps(s["Action"]), values.resolve(s["Resource"]))
        for s in s3_endpoint["PolicyDocument"]["Statement"]
    }
    assert admitted == {
        (json.dumps(["s3:GetObject", "s3:PutObject"]), f"{bucket}/*"),
        (json.dumps("s3:ListBucket"), bucket),
        (json.dumps("s3:GetObject"), LAYER_BUCKET_OBJECTS),
    }
    for statement in s3_endpoint["PolicyDocument"]["Statement"]:
        # Anyone's signature (the QA task's requests are signed by PrepareQa's role), but
        # only these resources: a presigned PUT to another bucket is refused here.
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == {"AWS": "*"}
        assert "Condition" not in statement
    # Both task subnet groups route to it (the QA task's grant, the export's files); the
    # endpoint subnets need no S3.
    assert _route_table_groups(template, s3_endpoint["RouteTableIds"]) == [
        "export",
        "export",
        "qa",
        "qa",
    ]


def test_only_the_export_subnets_route_to_dynamodb_and_only_for_the_traces_table(
    template: Template, template_json: dict[str, Any]
) -> None:
    dynamodb = _endpoints(template)["dynamodb"]
    assert _route_table_groups(template, dynamodb["RouteTableIds"]) == ["export", "export"]
    (statement,) = dynamodb["PolicyDocument"]["Statement"]
    assert statement["Action"] == "dynamodb:Query"
    assert statement["Resource"]["Fn::GetAtt"][0].startswith("StorageTraces")


# ---- subnets and security groups --------------------------------------------------------------


def test_qa_and_export_run_in_their_own_subnets_with_their_own_groups(template: Template) -> None:
    qa = _machine_substitutions(template, "Pipeline")
    export = _machine_substitutions(template, "Export")
    qa_subnets = {qa[name]["Ref"] for name in ("QaSubnetA", "QaSubnetB")}
    export_subnets = {export[name]["Ref"] for name in ("SubnetA", "SubnetB")}
    assert len(qa_subnets) == len(export_subnets) == 2  # two zones each
    assert {_subnet_group(template, s) for s in qa_subnets} == {"qa"}
    assert {_subnet_group(template, s) for s in export_subnets} == {"export"}
    groups = _task_groups(template)
    assert groups["qa"] != groups["export"]


def test_each_endpoint_admits_https_only_from_the_tasks_that_use_it(template: Template) -> None:
    groups = _task_groups(template)
    qa, export = groups["qa"], groups["export"]
    expected = {
        "ecr.api": {qa, export},  # the image pull
        "ecr.dkr": {qa, export},
        "logs": {qa, export},  # the log driver
        "kms": {export},  # the manifest signature
        "codeartifact.repositories": {qa},  # the dependency step
        "codeartifact.api": set(),  # PrepareQa gets the token, outside the VPC
    }
    interface = {k: e for k, e in _endpoints(template).items() if "SecurityGroupIds" in e}
    assert set(interface) == set(expected)
    security_groups = template.find_resources("AWS::EC2::SecurityGroup")
    seen_groups = set()
    for service, endpoint in interface.items():
        group = _group_of(endpoint)
        seen_groups.add(group)
        assert "SecurityGroupIngress" not in security_groups[group]["Properties"], service
        ingress = _rules(template, "Ingress", group)
        assert _peer_groups(ingress, "SourceSecurityGroupId") == expected[service], service
        # in the endpoint subnets, one per zone
        subnets = {_subnet_group(template, s["Ref"]) for s in endpoint["SubnetIds"]}
        assert subnets == {"endpoints"}, service
        assert len(endpoint["SubnetIds"]) == 2, service
    assert len(seen_groups) == len(interface)  # a group of its own each


def test_each_task_lets_out_only_https_to_its_endpoints_and_gateways(template: Template) -> None:
    groups = _task_groups(template)
    security_groups = template.find_resources("AWS::EC2::SecurityGroup")
    endpoint_groups = {
        k: _group_of(e) for k, e in _endpoints(template).items() if "SecurityGroupIds" in e
    }
    expected = {
        "qa": (
            {"ecr.api", "ecr.dkr", "logs", "codeartifact.repositories"},
            [PREFIX_LISTS["s3_prefix_list_id"]],
        ),
        "export": (
            {"ecr.api", "ecr.dkr", "logs", "kms"},
            [PREFIX_LISTS["s3_prefix_list_id"], PREFIX_LISTS["dynamodb_prefix_list_id"]],
        ),
    }
    for task, (services, prefix_lists) in expected.items():
        group = security_groups[groups[task]]["Properties"]
        # No inline rule: the standalone ones below replace the default allow-all egress.
        assert "SecurityGroupEgress" not in group, task
        egress = _rules(template, "Egress", groups[task])
        to_prefix_lists = [r for r in egress if "DestinationPrefixListId" in r]
        to_groups = [r for r in egress if "DestinationSecurityGroupId" in r]
        assert len(to_prefix_lists) + len(to_groups) == len(egress), task  # no address range
        assert [r["DestinationPrefixListId"] for r in to_prefix_lists] == prefix_lists, task
        assert _peer_groups(to_prefix_lists + to_groups, "GroupId") == {groups[task]}
        assert _peer_groups(to_groups, "DestinationSecurityGroupId") == {
            endpoint_groups[s] for s in services
        }, task
        assert "SecurityGroupIngress" not in group
        assert not _rules(template, "Ingress", groups[task])


def test_without_prefix_lists_the_gateway_egress_is_open_and_synth_says_so() -> None:
    app = App()
    stack = Stack(app, "network")
    network = TaskNetwork(stack, config=StackConfig(stage="test"), bucket=s3.Bucket(stack, "Data"))
    client = ec2.SecurityGroup(stack, "Client", vpc=network.vpc, allow_all_outbound=False)
    network.allow_gateway(client, "s3")
    template = Template.from_stack(stack)
    (group,) = [
        g
        for k, g in template.find_resources("AWS::EC2::SecurityGroup").items()
        if k.startswith("Client")
    ]
    assert group["Properties"]["SecurityGroupEgress"] == [
        {
            "CidrIp": "0.0.0.0/0",
            "Description": "S3 through its gateway endpoint",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]
    Annotations.from_stack(stack).has_warning(
        "/network/Client", Match.string_like_regexp("s3_prefix_list_id is not set")
    )


# ---- the DNS Firewall --------------------------------------------------------------------------


def _matches(pattern: str, name: str) -> bool:
    """DNS Firewall's domain matching: `*.x` matches x's subdomains, else the name itself."""
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    return name == pattern


def _firewall(template: Template, template_json: dict[str, Any]) -> tuple[list[str], list[Any]]:
    values = TemplateValues(template_json)
    lists = {
        k: values.resolve(v["Properties"]["Domains"])
        for k, v in template.find_resources("AWS::Route53Resolver::FirewallDomainList").items()
    }
    (group_id, group) = next(
        iter(template.find_resources("AWS::Route53Resolver::FirewallRuleGroup").items())
    )
    (association,) = template.find_resources(
        "AWS::Route53Resolver::FirewallRuleGroupAssociation"
    ).values()
    assert association["Properties"]["FirewallRuleGroupId"] == {"Fn::GetAtt": [group_id, "Id"]}
    (vpc_id,) = template.find_resources("AWS::EC2::VPC")
    assert association["Properties"]["VpcId"] == {"Ref": vpc_id}
    rules = sorted(group["Properties"]["FirewallRules"], key=lambda r: r["Priority"])
    resolved = [(r, lists[r["FirewallDomainListId"]["Fn::GetAtt"][0]]) for r in rules]
    allow, block = resolved
    assert allow[0]["Action"] == "ALLOW"
    assert block[0]["Action"] == "BLOCK"
    assert block[0]["BlockResponse"] == "NXDOMAIN"
    assert block[1] == ["*"]
    return list(allow[1]), rules


def _resolvable(allowed: list[str], name: str) -> bool:
    return any(_matches(pattern, name) for pattern in allowed)


def test_the_vpc_resolves_only_the_aws_names_the_tasks_use(
    template: Template, template_json: dict[str, Any]
) -> None:
    allowed, _ = _firewall(template, template_json)
    assert all(name.endswith(".amazonaws.com") for name in allowed)
    # What the tasks and their agents resolve (Fargate pulls and logs through the task's
    # network interface): every name has its endpoint, and nothing else is resolved.
    bucket = "prtrace-test-data-123"
    signer = boto3.client(
        "s3",
        region_name=REGION,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="example",  # signs locally, sent nowhere
        config=Config(signature_version="s3v4"),
    )
    presigned = urlsplit(
        signer.generate_presigned_url("get_object", {"Bucket": bucket, "Key": "k"})
    )
    index = TemplateValues(template_json).resolve(
        next(
            e["Value"]
            for d in template.find_resources("AWS::ECS::TaskDefinition").values()
            for c in d["Properties"]["ContainerDefinitions"]
            for e in c.get("Environment", [])
            if e["Name"] == "PRTRACE_QA_PACKAGE_INDEX"
        )
    )
    used = [
        presigned.hostname,  # the QA grant, as botocore signs it
        f"{bucket}.s3.{REGION}.amazonaws.com",
        f"prod-{REGION}-starport-layer-bucket.s3.{REGION}.amazonaws.com",
        f"api.ecr.{REGION}.amazonaws.com",
        f"123456789012.dkr.ecr.{REGION}.amazonaws.com",
        f"logs.{REGION}.amazonaws.com",
        f"kms.{REGION}.amazonaws.com",
        f"dynamodb.{REGION}.amazonaws.com",
        f"codeartifact.{REGION}.amazonaws.com",
        urlsplit(index).hostname,
    ]
    for name in used:
        assert name
        assert _resolvable(allowed, name), name
    for name in (
        "c2VjcmV0.attacker.example",  # data in a label, to someone else's name server
        "example.com",
        f"sts.{REGION}.amazonaws.com",  # no endpoint, no route: not even AWS names
        f"secretsmanager.{REGION}.amazonaws.com",
        f"ecr.{REGION}.amazonaws.com.attacker.example",
    ):
        assert not _resolvable(allowed, name), name


def test_aws_names_may_be_cnames_to_other_aws_names(
    template: Template, template_json: dict[str, Any]
) -> None:
    # S3's names CNAME to s3-r-w.<region>.amazonaws.com and the like: the allow rule trusts
    # the chain an allowed name starts (all AWS's), the block rule catches every other.
    _, (allow, block) = _firewall(template, template_json)
    assert allow["FirewallDomainRedirectionAction"] == "TRUST_REDIRECTION_DOMAIN"
    assert block.get("FirewallDomainRedirectionAction", "INSPECT_REDIRECTION_DOMAIN") == (
        "INSPECT_REDIRECTION_DOMAIN"
    )
