"""boto3, the AWS CLI and localstack-client all reach the local cloud's AWS endpoint and
see the deployed stack: its tables, its bucket, the stack and its outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from localstack_client.session import Session

from local_cloud.cloud import LocalCloudInfo, local_environment
from tests.local_cloud import REGION, aws

AWS_CLI = Path(sys.executable).parent / "aws"
TABLE_OUTPUTS = ("TracesTableName", "TokensTableName", "IdempotencyTableName")


def test_boto3_sees_the_deployed_stack(cloud: LocalCloudInfo) -> None:
    outputs = cloud.stack.outputs
    tables = aws(cloud, "dynamodb").list_tables()["TableNames"]
    assert {outputs[name] for name in TABLE_OUTPUTS} <= set(tables)
    buckets = {b["Name"] for b in aws(cloud, "s3").list_buckets()["Buckets"]}
    assert outputs["DataBucketName"] in buckets
    (stack,) = aws(cloud, "cloudformation").describe_stacks(StackName=cloud.stack.name)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]} == outputs
    assert outputs["ApiEndpoint"] == cloud.endpoint
    secret = aws(cloud, "secretsmanager").describe_secret(SecretId=outputs["IntegrityKeySecretArn"])
    assert secret["ARN"] == outputs["IntegrityKeySecretArn"]


def aws_cli(cloud: LocalCloudInfo, *args: str) -> str:
    # The endpoint is given on the command line, as a user would; the environment only
    # carries credentials and the region.
    env = local_environment(cloud.aws_endpoint, REGION)
    env.pop("AWS_ENDPOINT_URL")
    done = subprocess.run(
        [str(AWS_CLI), "--endpoint-url", cloud.aws_endpoint, "--region", REGION, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_aws_cli_sees_the_deployed_stack(cloud: LocalCloudInfo) -> None:
    outputs = cloud.stack.outputs
    tables = json.loads(aws_cli(cloud, "dynamodb", "list-tables", "--output", "json"))
    assert {outputs[name] for name in TABLE_OUTPUTS} <= set(tables["TableNames"])

    listed = aws_cli(cloud, "s3", "ls")
    assert outputs["DataBucketName"] in {line.split()[-1] for line in listed.splitlines()}

    described = json.loads(
        aws_cli(
            cloud,
            "cloudformation",
            "describe-stacks",
            "--stack-name",
            cloud.stack.name,
            "--output",
            "json",
        )
    )
    (stack,) = described["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]} == outputs


def test_localstack_client_sees_the_deployed_stack(
    cloud: LocalCloudInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # localstack-client takes AWS_ENDPOINT_URL when set, else LOCALSTACK_HOST (host:port):
    # use the latter so the endpoint comes from localstack-client's own configuration.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    host_port = cloud.aws_endpoint.removeprefix("http://")
    monkeypatch.setenv("LOCALSTACK_HOST", host_port)
    session = Session(region_name=REGION)
    assert session.client("dynamodb").meta.endpoint_url == cloud.aws_endpoint

    outputs = cloud.stack.outputs
    tables = session.client("dynamodb").list_tables()["TableNames"]
    assert {outputs[name] for name in TABLE_OUTPUTS} <= set(tables)
    buckets = {b["Name"] for b in session.client("s3").list_buckets()["Buckets"]}
    assert outputs["DataBucketName"] in buckets
    stacks = session.client("cloudformation").describe_stacks(StackName=cloud.stack.name)
    assert stacks["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    # The same endpoint, given explicitly.
    monkeypatch.delenv("LOCALSTACK_HOST")
    explicit = Session(localstack_host=host_port, region_name=REGION)
    assert outputs["TracesTableName"] in explicit.client("dynamodb").list_tables()["TableNames"]
