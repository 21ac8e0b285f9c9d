"""Deploy a synthesized stack into an AWS endpoint through its CloudFormation API, as
`cdk deploy` would: publish the file assets, satisfy the bootstrap check, create the stack
from the template as synthesized (in moto, cdk_bridge.py supplies what it cannot model).
Without a bootstrap stack: `make deploy-local` has the real CDK CLI bootstrap and deploy."""

from __future__ import annotations

import contextlib
import io
import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from infra_cdk.local.assembly import LOCAL_ACCOUNT, LOCAL_REGION, StackAssembly
from infra_cdk.local.emulator import emulator_client

BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
BOOTSTRAP_VERSION = "30"


class DeployError(RuntimeError):
    pass


@dataclass(frozen=True)
class DeployedStack:
    name: str
    outputs: dict[str, str]
    physical_ids: dict[str, str]  # logical id -> physical id


def deploy(
    assembly: StackAssembly,
    *,
    aws_endpoint: str,
    region: str = LOCAL_REGION,
    timeout_s: float = 60,
) -> DeployedStack:
    _publish_assets(assembly, aws_endpoint, region)
    ssm = emulator_client("ssm", aws_endpoint, region)
    ssm.put_parameter(
        Name=BOOTSTRAP_VERSION_PARAMETER, Value=BOOTSTRAP_VERSION, Type="String", Overwrite=True
    )
    cfn = emulator_client("cloudformation", aws_endpoint, region)
    cfn.create_stack(
        StackName=assembly.stack_name,
        TemplateBody=json.dumps(assembly.template),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )
    deadline = time.monotonic() + timeout_s
    while True:
        stack = cfn.describe_stacks(StackName=assembly.stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if status.endswith("_COMPLETE") and "ROLLBACK" not in status:
            break
        if "FAILED" in status or "ROLLBACK" in status:
            raise DeployError(
                f"stack {assembly.stack_name}: {status} {stack.get('StackStatusReason', '')}"
            )
        if time.monotonic() > deadline:
            raise DeployError(f"stack {assembly.stack_name} still {status} after {timeout_s} s")
        time.sleep(0.2)
    return describe_deployed_stack(assembly.stack_name, aws_endpoint, region)


def describe_deployed_stack(
    stack_name: str, aws_endpoint: str, region: str = LOCAL_REGION
) -> DeployedStack:
    """A deployed stack's outputs and resources, as CloudFormation reports them."""
    cfn = emulator_client("cloudformation", aws_endpoint, region)
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    physical_ids: dict[str, str] = {}
    paginator = cfn.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=stack_name):
        for summary in page["StackResourceSummaries"]:
            if summary.get("PhysicalResourceId") and summary.get("LogicalResourceId"):
                physical_ids[summary["LogicalResourceId"]] = summary["PhysicalResourceId"]
    return DeployedStack(name=stack_name, outputs=outputs, physical_ids=physical_ids)


def _publish_assets(assembly: StackAssembly, aws_endpoint: str, region: str) -> None:
    s3 = emulator_client("s3", aws_endpoint, region)
    created: set[str] = set()
    for asset in assembly.assets:
        bucket = _substitute(asset.bucket, region)
        if bucket not in created:
            with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
                s3.create_bucket(Bucket=bucket)
            created.add(bucket)
        body = (
            _zip_directory(asset.source) if asset.packaging == "zip" else asset.source.read_bytes()
        )
        s3.put_object(Bucket=bucket, Key=_substitute(asset.key, region), Body=body)


def _substitute(text: str, region: str) -> str:
    return (
        text.replace("${AWS::AccountId}", LOCAL_ACCOUNT)
        .replace("${AWS::Region}", region)
        .replace("${AWS::Partition}", "aws")
    )


def _zip_directory(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())
    return buffer.getvalue()


def unzip_to(data: bytes, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(target)
    return target
