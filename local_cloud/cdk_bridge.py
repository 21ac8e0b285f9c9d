"""What moto cannot model of the operators' stack, bridged in this one place, so that the
unchanged template deploys into it, whether the real CDK CLI (`cdk bootstrap`, `cdk
deploy`: cdk_cli.py) or the local cloud's own deployer (deploy.py) deploys it.

moto's CloudFormation skips resource types it has no model for, and a reference to a
skipped resource resolves to nothing (an IAM policy naming the integrity key's ARN is then
refused as MalformedPolicyDocument; the `ApiEndpoint` output fails validation). For the
types below the bridge gives moto's CloudFormation a model that creates the resource
through the emulator's own API, as CloudFormation does, so references resolve to real
values and the resources can be inspected like any other:

- `AWS::SecretsManager::Secret`: created with its `SecretString` or a value generated as
  `GenerateSecretString` says (the template JSON plus one random string);
- `AWS::CloudWatch::Alarm`: created with PutMetricAlarm (moto evaluates no alarm);
- `AWS::KMS::Key`: created with CreateKey and its `KeySpec` and `KeyUsage` (moto's own model
  makes every key a symmetric encryption key, so the manifest signing key, ECC_NIST_P256
  for SIGN_VERIFY, could not sign); `Ref` is the key id, `Arn` its ARN;
- `AWS::ApiGatewayV2::Api`, `Integration`, `Route`, `Authorizer`, `Stage`: created in
  moto's API Gateway v2 control plane. moto has no data plane for them: the local gateway
  (http_gateway.py) serves the template's routes, and the API's `ApiEndpoint` attribute is
  the gateway's URL.

Three more gaps are bridged (moto_patches.py installs the first two into moto):

- moto's ExecuteChangeSet (how the CLI deploys) leaves the stack's outputs as they were
  before it (none, for a new stack): they are evaluated afterwards, as CreateStack and
  UpdateStack evaluate them;
- moto's `Fn::Sub` turns `$$` into `$` (it substitutes with `string.Template`), which
  breaks the Step Functions context object (`$$.Execution.Name`) in the pipeline's
  definition: such values are evaluated as the equivalent `Fn::Join` (fn_sub.py);
- moto's ECR has no registry (no `docker push`), so the QA task's image asset cannot be
  published: `register_container_images` records each image asset's manifest under its
  tag in the bootstrap repository, and the CLI finds it already published. No image is
  built; the local ECS executor runs the task's entry point under the local sandbox.

Left to moto as it is: `AWS::S3::BucketPolicy`, `AWS::SNS::TopicPolicy` (skipped; moto
enforces no resource policy, nothing refers to them) and `AWS::CDK::Metadata`. Elsewhere,
the local cloud supplies what moto's services do not run: Lambda invocations
(lambda_runtime.py), ECS tasks (ecs.py), executions of deployed state machines and the
execution-end events (stepfunctions.py). moto_patches.py is where each of these, and the
models here and the `Fn::Sub` and change-set fixes, are installed into moto and removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

from local_cloud.assembly import LOCAL_ACCOUNT, LOCAL_REGION
from local_cloud.emulator import emulator_client


@dataclass(frozen=True)
class _Settings:
    aws_endpoint: str
    gateway_url: str


class EmulatedResource:
    """A CloudFormation model for moto (duck-typed: a subclass of moto's own base class
    would register itself for every moto user in this process, installed or not)."""

    cloudformation_resource_type: ClassVar[str]
    service: ClassVar[str]
    attributes: ClassVar[frozenset[str]] = frozenset()
    settings: ClassVar[_Settings | None] = None

    def __init__(
        self, physical_id: str, values: dict[str, str], properties: dict[str, Any]
    ) -> None:
        self.physical_resource_id = physical_id
        self._values = values
        self._properties = properties  # as created: references resolved

    # -- what moto's CloudFormation calls ---------------------------------------------

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.cloudformation_resource_type

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.attributes

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name not in self._values:
            # moto logs this (with the resource's name) and leaves the value unresolved
            raise NotImplementedError(f'"Fn::GetAtt" : [ "{{0}}" , "{attribute_name}" ]"')
        return self._values[attribute_name]

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> EmulatedResource:
        properties = dict(cloudformation_json.get("Properties") or {})
        return cls.create(cls.client(region_name), resource_name, properties)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: EmulatedResource,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> EmulatedResource:
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )

    def delete(self, account_id: str, region_name: str) -> None:
        """What moto calls to delete a stack's resource."""
        self.remove(self.client(region_name))

    @classmethod
    def delete_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        """moto's fallback when `delete` fails; its properties are unresolved: nothing to do."""

    # -- what each type does ----------------------------------------------------------

    @classmethod
    def client(cls, region_name: str) -> Any:
        if cls.settings is None:
            raise RuntimeError("an unbound bridged model: use bridged_types()")
        return emulator_client(cls.service, cls.settings.aws_endpoint, region_name)

    @classmethod
    def create(cls, client: Any, name: str, properties: dict[str, Any]) -> EmulatedResource:
        raise NotImplementedError

    def remove(self, client: Any) -> None:
        raise NotImplementedError


def generated_secret_string(client: Any, generate: dict[str, Any]) -> str:
    """A secret's value as CloudFormation's GenerateSecretString makes it: the template JSON
    with one generated string added under GenerateStringKey (or the string alone)."""
    password = client.get_random_password(
        PasswordLength=generate.get("PasswordLength", 32),
        ExcludeCharacters=generate.get("ExcludeCharacters", ""),
        ExcludeLowercase=generate.get("ExcludeLowercase", False),
        ExcludeNumbers=generate.get("ExcludeNumbers", False),
        ExcludePunctuation=generate.get("ExcludePunctuation", False),
        ExcludeUppercase=generate.get("ExcludeUppercase", False),
        IncludeSpace=generate.get("IncludeSpace", False),
        RequireEachIncludedType=generate.get("RequireEachIncludedType", True),
    )["RandomPassword"]
    if "SecretStringTemplate" not in generate:
        return str(password)
    value: dict[str, Any] = json.loads(generate["SecretStringTemplate"])
    value[generate["GenerateStringKey"]] = password
    return json.dumps(value)


class Secret(EmulatedResource):
    cloudformation_resource_type = "AWS::SecretsManager::Secret"
    service = "secretsmanager"
    attributes = frozenset({"Id"})

    @classmethod
    def create(cls, client: Any, name: str, properties: dict[str, Any]) -> EmulatedResource:
        value = properties.get("SecretString")
        if value is None:
            value = generated_secret_string(client, properties.get("GenerateSecretString", {}))
        request = {
            key: properties[key] for key in ("Description", "KmsKeyId", "Tags") if key in properties
        }
        arn = client.create_secret(
            Name=properties.get("Name", name), SecretString=value, **request
        )["ARN"]
        return cls(arn, {"Id": arn}, properties)

    def remove(self, client: Any) -> None:
        client.delete_secret(SecretId=self.physical_resource_id, ForceDeleteWithoutRecovery=True)


class Alarm(EmulatedResource):
    cloudformation_resource_type = "AWS::CloudWatch::Alarm"
    service = "cloudwatch"
    attributes = frozenset({"Arn"})

    @classmethod
    def create(cls, client: Any, name: str, properties: dict[str, Any]) -> EmulatedResource:
        name = properties.pop("AlarmName", name)
        client.put_metric_alarm(AlarmName=name, **properties)
        arn = client.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["AlarmArn"]
        return cls(name, {"Arn": arn}, properties)

    def remove(self, client: Any) -> None:
        client.delete_alarms(AlarmNames=[self.physical_resource_id])


class KmsKey(EmulatedResource):
    cloudformation_resource_type = "AWS::KMS::Key"
    service = "kms"
    attributes = frozenset({"Arn", "KeyId"})

    @classmethod
    def create(cls, client: Any, name: str, properties: dict[str, Any]) -> EmulatedResource:
        request: dict[str, Any] = {
            "KeyUsage": properties.get("KeyUsage", "ENCRYPT_DECRYPT"),
            "KeySpec": properties.get("KeySpec", "SYMMETRIC_DEFAULT"),
        }
        if "KeyPolicy" in properties:
            policy = properties["KeyPolicy"]
            request["Policy"] = policy if isinstance(policy, str) else json.dumps(policy)
        if "Description" in properties:
            request["Description"] = properties["Description"]
        if properties.get("Tags"):
            request["Tags"] = [
                {"TagKey": t["Key"], "TagValue": t["Value"]} for t in properties["Tags"]
            ]
        metadata = client.create_key(**request)["KeyMetadata"]
        if str(properties.get("EnableKeyRotation", "false")).lower() == "true":
            client.enable_key_rotation(KeyId=metadata["KeyId"])
        values = {"Arn": metadata["Arn"], "KeyId": metadata["KeyId"]}
        return cls(metadata["KeyId"], values, properties)

    def remove(self, client: Any) -> None:
        with contextlib.suppress(client.exceptions.NotFoundException):
            client.schedule_key_deletion(KeyId=self.physical_resource_id, PendingWindowInDays=7)


class HttpApi(EmulatedResource):
    cloudformation_resource_type = "AWS::ApiGatewayV2::Api"
    service = "apigatewayv2"
    attributes = frozenset({"ApiEndpoint", "ApiId"})

    @classmethod
    def create(cls, client: Any, name: str, properties: dict[str, Any]) -> EmulatedResource:
        assert cls.settings is not None
        properties.setdefault("Name", name)
        api_id = client.create_api(**properties)["ApiId"]
        values = {"ApiId": api_id, "ApiEndpoint": cls.settings.gateway_url}
        return cls(api_id, values, properties)

    def remove(self, client: Any) -> None:
        client.delete_api(ApiId=self.physical_resource_id)


class _HttpApiPart(EmulatedResource):
    """An HTTP API's integration, route, authorizer or stage: created under its ApiId."""

    service = "apigatewayv2"
    operation: ClassVar[str]
    id_field: ClassVar[str]

    @classmethod
    def create(cls, client: Any, name: str, properties: dict[str, Any]) -> EmulatedResource:
        physical_id = getattr(client, f"create_{cls.operation}")(**properties)[cls.id_field]
        return cls(physical_id, {cls.id_field: physical_id}, properties)

    def remove(self, client: Any) -> None:
        # moto deletes a stack's resources in no particular order; the API's deletion
        # took its parts with it.
        with contextlib.suppress(client.exceptions.NotFoundException):
            getattr(client, f"delete_{self.operation}")(
                ApiId=self._properties["ApiId"], **{self.id_field: self.physical_resource_id}
            )


class HttpApiIntegration(_HttpApiPart):
    cloudformation_resource_type = "AWS::ApiGatewayV2::Integration"
    operation, id_field = "integration", "IntegrationId"
    attributes = frozenset({id_field})


class HttpApiRoute(_HttpApiPart):
    cloudformation_resource_type = "AWS::ApiGatewayV2::Route"
    operation, id_field = "route", "RouteId"
    attributes = frozenset({id_field})


class HttpApiAuthorizer(_HttpApiPart):
    cloudformation_resource_type = "AWS::ApiGatewayV2::Authorizer"
    operation, id_field = "authorizer", "AuthorizerId"
    attributes = frozenset({id_field})


class HttpApiStage(_HttpApiPart):
    cloudformation_resource_type = "AWS::ApiGatewayV2::Stage"
    operation, id_field = "stage", "StageName"


BRIDGED: Final[dict[str, type[EmulatedResource]]] = {
    model.cloudformation_resource_type: model
    for model in (
        Secret,
        Alarm,
        KmsKey,
        HttpApi,
        HttpApiIntegration,
        HttpApiRoute,
        HttpApiAuthorizer,
        HttpApiStage,
    )
}


def bridged_types(*, aws_endpoint: str, gateway_url: str) -> dict[str, type[EmulatedResource]]:
    """The bridged models, each bound to the emulator they create resources in and the
    gateway the HTTP API's endpoint names (moto_patches.install hands them to moto's
    CloudFormation)."""
    settings = _Settings(aws_endpoint=aws_endpoint, gateway_url=gateway_url)
    return {
        resource_type: type(model.__name__, (model,), {"settings": settings})
        for resource_type, model in BRIDGED.items()
    }


def register_container_images(
    asset_manifest: Path, *, aws_endpoint: str, region: str = LOCAL_REGION
) -> list[str]:
    """Record each Docker image asset of a stack's asset manifest (`<stack>.assets.json`) in
    the emulator's ECR under the tag the CLI publishes it as; returns the image URIs.

    The manifest recorded names no layers: nothing here pulls the image (see the module's
    documentation)."""
    manifest = json.loads(asset_manifest.read_text())
    ecr = emulator_client("ecr", aws_endpoint, region)
    registered = []
    for asset_id, image in manifest.get("dockerImages", {}).items():
        for destination in image["destinations"].values():
            repository = _placeholders(destination["repositoryName"], region)
            tag = destination["imageTag"]
            config_digest = hashlib.sha256(f"{asset_id}:{tag}".encode()).hexdigest()
            image_manifest = {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": 0,
                    "digest": f"sha256:{config_digest}",
                },
                "layers": [],
            }
            existing = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": tag}])
            if not existing["images"]:
                ecr.put_image(
                    repositoryName=repository,
                    imageManifest=json.dumps(image_manifest),
                    imageTag=tag,
                )
            uri = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]
            registered.append(f"{uri['repositoryUri']}:{tag}")
    return registered


def _placeholders(text: str, region: str) -> str:
    return (
        text.replace("${AWS::AccountId}", LOCAL_ACCOUNT)
        .replace("${AWS::Region}", region)
        .replace("${AWS::Partition}", "aws")
    )
