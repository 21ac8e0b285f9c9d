"""local_cloud/deploy.py: the local deployer sends the template by URL, as `cdk deploy`
does: CloudFormation (on AWS, and LocalStack's) refuses an inline template over 51,200
bytes, and the stack's is several times that. moto does not enforce the limit, so the
client here refuses such a request as CloudFormation would."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from local_cloud import deploy as local_deploy
from local_cloud.assembly import FileAsset, StackAssembly
from local_cloud.emulator import emulator_client
from tests.moto_server import moto_server

INLINE_LIMIT = 51_200


class TemplateBodyTooLarge(Exception):
    pass


def refuse_large_inline_templates(params: dict[str, Any], **_: Any) -> None:
    body = params.get("TemplateBody")
    if body is not None and len(body.encode()) > INLINE_LIMIT:
        raise TemplateBodyTooLarge(f"TemplateBody of {len(body.encode())} bytes")


def large_assembly(outdir: Path) -> StackAssembly:
    # 80 parameters of 1 KB each: about 90 KB of template, as the real one is 180 KB.
    template = {
        "Resources": {
            f"Setting{i}": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": f"/large/{i}", "Type": "String", "Value": "x" * 1000},
            }
            for i in range(80)
        },
        "Outputs": {"First": {"Value": {"Ref": "Setting0"}}},
    }
    outdir.mkdir(parents=True)
    path = outdir / "large.template.json"
    path.write_text(json.dumps(template))
    key = hashlib.sha256(path.read_bytes()).hexdigest() + ".json"
    asset = FileAsset(source=path, packaging="file", bucket=local_deploy.STAGING_BUCKET, key=key)
    return StackAssembly(stack_name="large", template=template, assets=[asset], outdir=outdir)


def test_a_template_over_cloudformations_inline_limit_deploys_from_the_staging_bucket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def client(service: str, endpoint: str, region: str, **options: Any) -> Any:
        made = emulator_client(service, endpoint, region, **options)
        made.meta.events.register(
            "before-parameter-build.cloudformation.*", refuse_large_inline_templates
        )
        return made

    monkeypatch.setattr(local_deploy, "emulator_client", client)
    assembly = large_assembly(tmp_path / "cdk.out")
    assert len(json.dumps(assembly.template)) > INLINE_LIMIT
    with moto_server() as endpoint:
        deployed = local_deploy.deploy(assembly, aws_endpoint=endpoint)
        assert deployed.outputs["First"] == "/large/0"
        cfn = emulator_client("cloudformation", endpoint, "us-east-1")
        # A bootstrap stack as `cdk bootstrap` leaves one: its bucket holds the template.
        bootstrap = cfn.describe_stacks(StackName="CDKToolkit")["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in bootstrap["Outputs"]}
        assert outputs["BucketName"] == "cdk-hnb659fds-assets-123456789012-us-east-1"
        s3 = emulator_client("s3", endpoint, "us-east-1")
        stored = s3.get_object(Bucket=outputs["BucketName"], Key=assembly.assets[0].key)
        assert json.loads(stored["Body"].read()) == assembly.template
        ssm = emulator_client("ssm", endpoint, "us-east-1")
        version = ssm.get_parameter(Name="/cdk-bootstrap/hnb659fds/version")["Parameter"]
        assert version["Value"] == local_deploy.BOOTSTRAP_VERSION


def test_the_template_url_names_the_published_template_in_the_endpoints_account(
    tmp_path: Path,
) -> None:
    assembly = large_assembly(tmp_path / "cdk.out")
    url = local_deploy.template_url(assembly, "000000000000", "eu-west-1")
    assert url == (
        "https://s3.eu-west-1.amazonaws.com/cdk-hnb659fds-assets-000000000000-eu-west-1/"
        + assembly.assets[0].key
    )
