"""What IAM authorizes for one recorded AWS call (tests/infra/aws_calls.py).

Most operations are the IAM action of the same name on the resource they name. The
exceptions are the ones this code makes: HeadObject is `s3:GetObject`; HeadBucket and
ListObjectsV2 are `s3:ListBucket` (the listing's prefix is the `s3:prefix` context key;
HeadBucket has none); a DynamoDB transaction is one action per item; and a read of a
missing object answers 404 (which the adapters read as "absent") only to a caller that
may also list that key, as `s3:ListBucket` with the key as `s3:prefix`, otherwise 403.
That last rule is S3's documented 403-instead-of-404; that the prefix condition is
evaluated against the key is what AWS users report, not verified here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from tests.infra.cfn_values import ACCOUNT, PARTITION, REGION, SECRET_SUFFIX
from tests.infra.iam_policy import Request

Call = dict[str, Any]
# `$NAME` in a recorded call -> the value the function is deployed with.
Setting = Callable[[str], str]

_S3_ACTIONS: Final = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "ListObjectsV2": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
}
_TRANSACTION_ACTIONS: Final = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


def requests_of(call: Call, setting: Setting) -> list[Request]:
    params = call["params"]

    def named(param: str) -> str:
        value = str(params[param])
        return setting(value[1:]) if value.startswith("$") else value

    service, operation = call["service"], call["operation"]
    if service == "s3":
        return _s3(operation, f"arn:{PARTITION}:s3:::{named('Bucket')}", params, call["outcome"])
    if service == "dynamodb":
        return _dynamodb(operation, params, named, setting)
    if service == "secretsmanager":
        return [Request(f"secretsmanager:{operation}", secret_arn(named("SecretId")))]
    if service == "states" and "executionArn" in params:  # "$MACHINE:{execution}"
        machine, _, _ = str(params["executionArn"]).rpartition(":")
        arn = setting(machine[1:]) if machine.startswith("$") else machine
        execution = arn.replace(":stateMachine:", ":execution:", 1) + ":ex_0"
        return [Request(f"states:{operation}", execution)]
    if service == "states":
        return [Request(f"states:{operation}", named("stateMachineArn"))]
    if service == "kms":  # the key is named by its ARN (the stack configures it so)
        return [Request(f"kms:{operation}", named("KeyId"))]
    if service == "codeartifact" and operation == "GetAuthorizationToken":
        return _codeartifact_token(named("domain"), named("domainOwner"), setting)
    raise NotImplementedError(f"no IAM mapping for {service}:{operation} yet")


def _codeartifact_token(domain: str, owner: str, setting: Setting) -> list[Request]:
    """CodeArtifact's documented needs for a token: the call itself, an STS bearer token
    for the service, and, since the token acts with its requester's permissions, reading
    the repository the task installs from with it."""
    repository = setting("PRTRACE_QA_CODEARTIFACT_REPOSITORY")
    regional = f"arn:{PARTITION}:codeartifact:{REGION}:{owner}"
    return [
        Request("codeartifact:GetAuthorizationToken", f"{regional}:domain/{domain}"),
        Request(
            "sts:GetServiceBearerToken",
            "*",
            {"sts:AWSServiceName": "codeartifact.amazonaws.com"},
        ),
        Request("codeartifact:ReadFromRepository", f"{regional}:repository/{domain}/{repository}"),
    ]


def _s3(operation: str, bucket: str, params: dict[str, Any], outcome: str) -> list[Request]:
    action = _S3_ACTIONS[operation]
    if action == "s3:ListBucket":
        prefix = params.get("Prefix")
        return [Request(action, bucket, {"s3:prefix": prefix} if prefix is not None else {})]
    found = [Request(action, f"{bucket}/{params['Key']}")]
    if outcome == "not-found":
        found.append(Request("s3:ListBucket", bucket, {"s3:prefix": params["Key"]}))
    return found


def _dynamodb(
    operation: str, params: dict[str, Any], named: Callable[[str], str], setting: Setting
) -> list[Request]:
    if operation == "TransactWriteItems":
        found = []
        for item in params["TransactItems"]:
            kind, table = item.split(":", 1)
            name = setting(table[1:]) if table.startswith("$") else table
            found.append(Request(_TRANSACTION_ACTIONS[kind], table_arn(name)))
        return found
    resource = table_arn(named("TableName"))
    if "IndexName" in params:
        resource += f"/index/{params['IndexName']}"
    return [Request(f"dynamodb:{operation}", resource)]


def table_arn(name: str) -> str:
    return f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def secret_arn(secret_id: str) -> str:
    """A secret named by name is reached at its ARN, which ends in a random suffix."""
    if secret_id.startswith("arn:"):
        return secret_id
    return f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret_id}{SECRET_SUFFIX}"
