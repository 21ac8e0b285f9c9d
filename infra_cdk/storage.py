"""Stateful resources: the data bucket, the tables and the integrity key.

Key schemas here must match prtrace.adapters.dynamodb and the Powertools idempotency layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra_cdk.config import StackConfig
from infra_cdk.nag import acknowledge, object_wildcard
from prtrace import storage_keys, trace_table
from prtrace.adapters.dynamodb import IN_PIPELINE_INDEX, IN_PIPELINE_KEY, IN_PIPELINE_SINCE

# Every object of a trace is under its prefix, each kind at its own keys
# (prtrace.storage_keys, filled in with wildcards). Grants name kinds: a role reaches only
# the objects it uses.
ObjectKind = Literal[
    "chunk",
    "artifact",
    "document",
    "qa_report",
    "judge_result",
    "manifest_draft",
    "manifest",
    "attestation",
    "trace_table",
    "export_request",
    "export_file",
    "export_manifest",
    "export_envelope",
    "export_error",
]
OBJECT_PATTERNS: Final[dict[ObjectKind, str]] = {
    "chunk": f"{storage_keys.trace_prefix('*', '*')}/chunks/*",  # the seq is a number
    "artifact": storage_keys.artifact_key("*", "*", "*"),
    "document": storage_keys.document_key("*", "*"),
    "qa_report": storage_keys.qa_report_key("*", "*"),
    "judge_result": storage_keys.judge_result_key("*", "*"),
    "manifest_draft": storage_keys.manifest_draft_key("*", "*"),
    "manifest": storage_keys.manifest_key("*", "*"),
    "attestation": storage_keys.manifest_envelope_key("*", "*"),
    # The Parquet traces table (prtrace.trace_table), partitioned by tenant and date.
    "trace_table": f"{trace_table.table_prefix('*')}/*",
    # Dataset exports (prtrace.exports): under the tenant, beside its traces.
    "export_request": storage_keys.export_request_key("*", "*"),
    "export_file": storage_keys.export_file_key("*", "*", "*"),
    "export_manifest": storage_keys.export_manifest_key("*", "*"),
    "export_envelope": storage_keys.export_envelope_key("*", "*"),
    "export_error": storage_keys.export_error_key("*", "*"),
}

INTEGRITY_KEY_ID = "k1"


class StorageConstruct(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.DESTROY if config.destroy_data_on_delete else RemovalPolicy.RETAIN

        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
            removal_policy=removal,
            auto_delete_objects=False,
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This is the access-log bucket; it does not log itself.",
        )

        self.bucket = s3.Bucket(
            self,
            "Data",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="data/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="abort-incomplete-multipart",
                    abort_incomplete_multipart_upload_after=Duration.days(3),
                ),
                # Stored objects are never overwritten; old versions only exist if an
                # operator replaced something by hand.
                s3.LifecycleRule(
                    id="expire-noncurrent", noncurrent_version_expiration=Duration.days(90)
                ),
            ],
            removal_policy=removal,
        )

        self.traces_table = self._table(
            "Traces",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            removal=removal,
        )
        # Traces in the pipeline (finalized, not ended), for the stuck-trace sweeper.
        self.traces_table.add_global_secondary_index(
            index_name=IN_PIPELINE_INDEX,
            partition_key=dynamodb.Attribute(
                name=IN_PIPELINE_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(name=IN_PIPELINE_SINCE, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )
        self.tokens_table = self._table(
            "Tokens",
            partition_key=dynamodb.Attribute(name="token_id", type=dynamodb.AttributeType.STRING),
            removal=removal,
        )
        self.idempotency_table = self._table(
            "Idempotency",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute="expiration",
            removal=RemovalPolicy.DESTROY,  # records expire after 24 h anyway
        )

        # CloudFormation generates the first key: {"current": "k1", "k1": "<64 alphanumerics>"}
        # (alphanumerics are valid base64: 48 bytes). Rotation adds k2 and moves "current".
        self.integrity_key = secretsmanager.Secret(
            self,
            "IntegrityKey",
            description="prtrace event-chain and chunk MAC key ring",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=f'{{"current": "{INTEGRITY_KEY_ID}"}}',
                generate_string_key=INTEGRITY_KEY_ID,
                exclude_punctuation=True,
                include_space=False,
                password_length=64,
            ),
            removal_policy=removal,
        )
        acknowledge(
            self.integrity_key,
            "AwsSolutions-SMG4",
            "Key ids make rotation a manual, audited key-ring edit; old keys must stay.",
        )

    def grant_objects(
        self, role: iam.IRole, kinds: Sequence[ObjectKind], actions: Sequence[str]
    ) -> None:
        """These object actions (s3:GetObject, s3:PutObject) on these kinds of trace
        objects, of every tenant and trace, and on nothing else."""
        patterns = [OBJECT_PATTERNS[kind] for kind in kinds]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=list(actions),
                resources=[self.bucket.arn_for_objects(pattern) for pattern in patterns],
            )
        )
        for pattern in patterns:
            acknowledge(
                role,
                object_wildcard(self.bucket, pattern),
                "Keys are per tenant and trace; the role reaches only this kind of object.",
            )

    def grant_listing(
        self, role: iam.IRole, kinds: Sequence[ObjectKind], prefixes: Sequence[str] = ()
    ) -> None:
        """s3:ListBucket of these kinds' keys: without it a read of a missing object is 403,
        not the 404 the adapters take for "absent". `prefixes`: exact further prefixes."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={
                    "StringLike": {
                        "s3:prefix": [*(OBJECT_PATTERNS[kind] for kind in kinds), *prefixes]
                    }
                },
            )
        )

    def _table(
        self,
        construct_id: str,
        *,
        partition_key: dynamodb.Attribute,
        removal: RemovalPolicy,
        sort_key: dynamodb.Attribute | None = None,
        time_to_live_attribute: str | None = None,
    ) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            construct_id,
            partition_key=partition_key,
            sort_key=sort_key,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=time_to_live_attribute,
            removal_policy=removal,
        )
