"""Deploy a synthesized stack into an AWS endpoint through its CloudFormation API, as
`cdk deploy` would: publish the file assets (the template among them) to the bootstrap
bucket, create the stack from the template's URL (CloudFormation refuses an inline template
over 51,200 bytes, on AWS and in emulators alike; in moto, cdk_bridge.py supplies what it
cannot model). An endpoint without a `CDKToolkit` stack gets a minimal one first: the
staging bucket and the version parameter `cdk bootstrap` creates (`make deploy-local` has
the real CDK CLI bootstrap and deploy instead)."""

from __future__ import annotations

import contextlib
import io
import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local_cloud.assembly import LOCAL_REGION, StackAssembly
from local_cloud.emulator import emulator_client

BOOTSTRAP_STACK = "CDKToolkit"
BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
BOOTSTRAP_VERSION = "30"
STAGING_BUCKET = "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"
# What `cdk bootstrap` leaves that a deploy of file assets relies on, and nothing more.
MINIMAL_BOOTSTRAP_TEMPLATE = {
    "Description": "The CDK bootstrap resources a file-asset deploy needs (local cloud)",
    "Resources": {
        "StagingBucket": {
            "Type": "AWS::S3::Bucket",
            "Properties": {"BucketName": {"Fn::Sub": STAGING_BUCKET}},
        },
        "CdkBootstrapVersion": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {
                "Name": BOOTSTRAP_VERSION_PARAMETER,
                "Type": "String",
                "Value": BOOTSTRAP_VERSION,
            },
        },
    },
    "Outputs": {
        "BucketName": {"Value": {"Ref": "StagingBucket"}},
        "BootstrapVersion": {"Value": BOOTSTRAP_VERSION},
    },
}


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
    cfn = emulator_client("cloudformation", aws_endpoint, region)
    account = emulator_account(aws_endpoint, region)
    _bootstrap(cfn, timeout_s)
    _publish_assets(assembly, aws_endpoint, account, region)
    cfn.create_stack(
        StackName=assembly.stack_name,
        TemplateURL=template_url(assembly, account, region),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )
    _wait_created(cfn, assembly.stack_name, timeout_s)
    return describe_deployed_stack(assembly.stack_name, aws_endpoint, region)


def emulator_account(aws_endpoint: str, region: str = LOCAL_REGION) -> str:
    """The account the endpoint deploys into (moto: 123456789012; LocalStack: 000000000000
    unless the access key says otherwise): what `${AWS::AccountId}` becomes there."""
    identity = emulator_client("sts", aws_endpoint, region).get_caller_identity()
    return str(identity["Account"])


def template_url(assembly: StackAssembly, account: str, region: str) -> str:
    """Where the published template is, as `cdk deploy` names it to CloudFormation."""
    template = assembly.outdir / f"{assembly.stack_name}.template.json"
    for asset in assembly.assets:
        if asset.source == template:
            bucket, key = (_substitute(n, account, region) for n in (asset.bucket, asset.key))
            return f"https://s3.{region}.amazonaws.com/{bucket}/{key}"
    raise DeployError(f"{assembly.stack_name}: the asset manifest does not publish its template")


def _bootstrap(cfn: Any, timeout_s: float) -> None:
    """A minimal bootstrap stack where there is none (an emulator `cdk bootstrap` or
    `cdklocal bootstrap` prepared keeps its own)."""
    try:
        cfn.describe_stacks(StackName=BOOTSTRAP_STACK)
        return
    except ClientError as error:
        if "does not exist" not in str(error):
            raise
    cfn.create_stack(StackName=BOOTSTRAP_STACK, TemplateBody=json.dumps(MINIMAL_BOOTSTRAP_TEMPLATE))
    _wait_created(cfn, BOOTSTRAP_STACK, timeout_s)


def _wait_created(cfn: Any, stack_name: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if status.endswith("_COMPLETE") and "ROLLBACK" not in status:
            return
        if "FAILED" in status or "ROLLBACK" in status:
            raise DeployError(f"stack {stack_name}: {status} {stack.get('StackStatusReason', '')}")
        if time.monotonic() > deadline:
            raise DeployError(f"stack {stack_name} still {status} after {timeout_s} s")
        time.sleep(0.2)


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


def _publish_assets(assembly: StackAssembly, aws_endpoint: str, account: str, region: str) -> None:
    s3 = emulator_client("s3", aws_endpoint, region)
    created: set[str] = set()
    for asset in assembly.assets:
        bucket = _substitute(asset.bucket, account, region)
        if bucket not in created:
            with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
                s3.create_bucket(Bucket=bucket)
            created.add(bucket)
        body = (
            _zip_directory(asset.source) if asset.packaging == "zip" else asset.source.read_bytes()
        )
        s3.put_object(Bucket=bucket, Key=_substitute(asset.key, account, region), Body=body)


def _substitute(text: str, account: str, region: str) -> str:
    return (
        text.replace("${AWS::AccountId}", account)
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
