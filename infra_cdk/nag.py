"""cdk-nag acknowledgements: every one names its rule and says why in one line."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_s3 as s3
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def object_wildcard(bucket: s3.IBucket, pattern: str) -> str:
    """The IAM5 finding id cdk-nag gives a `bucket.arn_for_objects(pattern)` resource."""
    cfn = bucket.node.default_child
    assert isinstance(cfn, s3.CfnBucket)
    return f"AwsSolutions-IAM5[Resource::<{Stack.of(bucket).get_logical_id(cfn)}.Arn>/{pattern}]"
