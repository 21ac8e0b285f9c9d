"""CloudFormation values as the strings AWS would give them, for matching ARNs.

The stack names its resources with `Ref`, `Fn::GetAtt`, `Fn::Join` and `Fn::Sub`. Here
each resolves to what AWS returns for it, with the logical id standing in for the name
CloudFormation generates (`Ref` of a table -> `<StorageTraces…>`, its `Arn` ->
`arn:aws:dynamodb:us-east-1:123456789012:table/<StorageTraces…>`), and the pseudo
parameters fixed. A policy's resources and the ARNs a function's calls reach then
compare as plain strings.
"""

from __future__ import annotations

import re
from typing import Any, Final

PARTITION: Final = "aws"
REGION: Final = "us-east-1"
ACCOUNT: Final = "123456789012"
PSEUDO: Final = {
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
}
# The random suffix Secrets Manager adds to a secret's name in its ARN.
SECRET_SUFFIX: Final = "-AbCdEf"

_PREFIX = f"arn:{PARTITION}"
_REGIONAL = f"{REGION}:{ACCOUNT}"
# What `Ref` returns where it is an ARN rather than a name ({} is the physical name).
_REF_ARN: Final = {
    "AWS::SecretsManager::Secret": f"{_PREFIX}:secretsmanager:{_REGIONAL}:secret:{{}}"
    + SECRET_SUFFIX,
    "AWS::StepFunctions::StateMachine": f"{_PREFIX}:states:{_REGIONAL}:stateMachine:{{}}",
    "AWS::ECS::TaskDefinition": f"{_PREFIX}:ecs:{_REGIONAL}:task-definition/{{}}:1",
    "AWS::SNS::Topic": f"{_PREFIX}:sns:{_REGIONAL}:{{}}",
}
# `Fn::GetAtt <id>.Arn` of the resource types policies name.
_ARN: Final = {
    "AWS::DynamoDB::Table": f"{_PREFIX}:dynamodb:{_REGIONAL}:table/{{}}",
    "AWS::S3::Bucket": f"{_PREFIX}:s3:::{{}}",
    "AWS::Lambda::Function": f"{_PREFIX}:lambda:{_REGIONAL}:function:{{}}",
    "AWS::IAM::Role": f"{_PREFIX}:iam::{ACCOUNT}:role/{{}}",
    "AWS::Logs::LogGroup": f"{_PREFIX}:logs:{_REGIONAL}:log-group:{{}}:*",
    "AWS::ECS::Cluster": f"{_PREFIX}:ecs:{_REGIONAL}:cluster/{{}}",
    "AWS::KMS::Key": f"{_PREFIX}:kms:{_REGIONAL}:key/{{}}",
    **_REF_ARN,
}
_SUB = re.compile(r"\$\{([^}!]+)\}")


class TemplateValues:
    def __init__(self, template: dict[str, Any]) -> None:
        self.resources: dict[str, Any] = template["Resources"]

    def ref(self, logical_id: str) -> str:
        if logical_id in PSEUDO:
            return PSEUDO[logical_id]
        kind = self.resources[logical_id]["Type"]
        name = f"<{logical_id}>"
        return _REF_ARN[kind].format(name) if kind in _REF_ARN else name

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self.resources[logical_id]["Type"]
        if attribute == "Arn" and kind in _ARN:
            return _ARN[kind].format(f"<{logical_id}>")
        if attribute == "Name" and kind == "AWS::StepFunctions::StateMachine":
            return f"<{logical_id}>"  # the physical name its `Ref` ARN ends with
        return f"<{logical_id}.{attribute}>"

    def resolve(self, value: Any) -> Any:
        """Strings for intrinsic functions; lists and objects resolved member by member."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            return self.ref(value["Ref"])
        if set(value) == {"Fn::GetAtt"}:
            logical_id, attribute = value["Fn::GetAtt"]
            return self.get_att(logical_id, attribute)
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return separator.join(self.resolve(p) for p in parts)
        if set(value) == {"Fn::Sub"}:
            return self.sub(value["Fn::Sub"])
        return {k: self.resolve(v) for k, v in value.items()}

    def sub(self, argument: str | list[Any]) -> str:
        text, names = (argument, {}) if isinstance(argument, str) else argument
        values = {name: self.resolve(v) for name, v in names.items()}

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in values:
                return str(values[name])
            if "." in name:
                return self.get_att(*name.split(".", 1))
            return self.ref(name)

        return _SUB.sub(one, text)

    def logical_id_of(self, resolved_ref: str) -> str:
        """The resource whose `Ref` resolves to this string."""
        (found,) = [i for i in self.resources if self.ref(i) == resolved_ref]
        return found
