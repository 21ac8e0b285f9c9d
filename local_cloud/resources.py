"""Provision the stateful resources (tables, bucket, integrity key) in an AWS endpoint.

For unit and functional tests that drive the handlers in-process against moto's mocks,
where deploying the whole stack would cost seconds per test module. The local cloud
deploys the CDK stack itself (StorageConstruct); key schemas here must match it and
prtrace.adapters.dynamodb (tests/infra asserts the stack's side).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import boto3

from prtrace.adapters.dynamodb import IN_PIPELINE_INDEX, IN_PIPELINE_KEY, IN_PIPELINE_SINCE
from prtrace.adapters.keys import new_key_ring_secret


@dataclass(frozen=True)
class ResourceNames:
    traces_table: str = "prtrace-traces"
    tokens_table: str = "prtrace-tokens"
    idempotency_table: str = "prtrace-idempotency"
    bucket: str = "prtrace-data"
    key_secret_name: str = "prtrace/integrity-key"  # noqa: S105 - a name, not a secret

    def environment(self) -> dict[str, str]:
        """The variables the Lambdas read (prtrace.settings)."""
        return {
            "PRTRACE_TRACES_TABLE": self.traces_table,
            "PRTRACE_TOKENS_TABLE": self.tokens_table,
            "PRTRACE_IDEMPOTENCY_TABLE": self.idempotency_table,
            "PRTRACE_BUCKET": self.bucket,
            "PRTRACE_KEY_SECRET_NAME": self.key_secret_name,
        }


_IN_PIPELINE_KEYS: list[tuple[str, Literal["HASH", "RANGE"]]] = [
    (IN_PIPELINE_KEY, "HASH"),
    (IN_PIPELINE_SINCE, "RANGE"),
]
_IN_PIPELINE_INDEX: Any = {
    "IndexName": IN_PIPELINE_INDEX,
    "KeySchema": [{"AttributeName": n, "KeyType": t} for n, t in _IN_PIPELINE_KEYS],
    "Projection": {"ProjectionType": "KEYS_ONLY"},
}


def provision(names: ResourceNames, region: str = "us-east-1", **client_options: Any) -> None:
    """Create everything that is missing; leave what exists untouched. `client_options`
    (an emulator's endpoint_url and credentials) go to each boto3 client; without them,
    boto3 decides (moto's in-process mocks, in tests)."""
    dynamodb = boto3.client("dynamodb", region_name=region, **client_options)
    existing = set(dynamodb.list_tables()["TableNames"])
    tables: dict[str, list[tuple[str, Literal["HASH", "RANGE"]]]] = {
        names.traces_table: [("pk", "HASH"), ("sk", "RANGE")],
        names.tokens_table: [("token_id", "HASH")],
        names.idempotency_table: [("id", "HASH")],
    }
    for table, keys in tables.items():
        if table in existing:
            continue
        request: dict[str, Any] = {
            "TableName": table,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": n, "KeyType": t} for n, t in keys],
        }
        if table == names.traces_table:
            keys = keys + _IN_PIPELINE_KEYS
            request["GlobalSecondaryIndexes"] = [_IN_PIPELINE_INDEX]
        request["AttributeDefinitions"] = [
            {"AttributeName": n, "AttributeType": "S"} for n, _ in keys
        ]
        dynamodb.create_table(**request)
    s3 = boto3.client("s3", region_name=region, **client_options)
    if names.bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=names.bucket)
    secrets = boto3.client("secretsmanager", region_name=region, **client_options)
    try:
        secrets.describe_secret(SecretId=names.key_secret_name)
    except secrets.exceptions.ResourceNotFoundException:
        secrets.create_secret(Name=names.key_secret_name, SecretString=new_key_ring_secret())
