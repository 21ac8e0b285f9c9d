"""Stateful resources: the data bucket, the tables and the integrity key, and what keeps
them: Object Lock on the bucket's objects (the evidence), lifecycle rules, DynamoDB
deletion protection, an AWS Backup plan and, as an option, a customer managed KMS key
(docs/RETENTION.md says how they fit together and how a tenant's data is deleted).

Key schemas here must match prtrace.adapters.dynamodb and the Powertools idempotency layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_backup as backup
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra_cdk.config import StackConfig
from infra_cdk.nag import acknowledge, object_wildcard
from prtrace import storage_keys
from prtrace.adapters.dynamodb import IN_PIPELINE_INDEX, IN_PIPELINE_KEY, IN_PIPELINE_SINCE
from prtrace.dataset import event_table, trace_table

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
    "event_table",
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
    # The Parquet traces table (prtrace.dataset.trace_table), partitioned by tenant and date.
    "trace_table": f"{trace_table.table_prefix('*')}/*",
    # Its events table (prtrace.dataset.event_table), partitioned the same way.
    "event_table": f"{event_table.table_prefix('*')}/*",
    # Dataset exports (prtrace.dataset.exports): under the tenant, beside its traces.
    "export_request": storage_keys.export_request_key("*", "*"),
    "export_file": storage_keys.export_file_key("*", "*", "*"),
    "export_manifest": storage_keys.export_manifest_key("*", "*"),
    "export_envelope": storage_keys.export_envelope_key("*", "*"),
    "export_error": storage_keys.export_error_key("*", "*"),
}

INTEGRITY_KEY_ID = "k1"

# Lifecycle: a stored object is read most in its first weeks (the pipeline, the viewer,
# exports); later it is evidence, read rarely. Objects under 128 KiB stay where they are
# (S3's default: smaller objects cost more in the colder classes than they save).
INFREQUENT_ACCESS_AFTER_DAYS: Final = 30
GLACIER_INSTANT_AFTER_DAYS: Final = 90
# Old versions exist only where something was replaced by hand (every write is
# conditional); a locked version outlives this until its lock ends.
NONCURRENT_VERSIONS_KEPT_DAYS: Final = 30
MULTIPART_ABORT_DAYS: Final = 3
# The daily backup runs at 03:00 UTC, away from the hourly sweep.
BACKUP_HOUR_UTC: Final = "3"
# What S3 and DynamoDB do with the data key on a caller's behalf (AWS managed keys' policy).
DATA_KEY_ACTIONS: Final = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
    "kms:CreateGrant",
)


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

        self.data_key = (
            self._data_key(config) if config.data_encryption == "customer-managed" else None
        )
        lock = config.object_lock_mode
        self.bucket = s3.Bucket(
            self,
            "Data",
            encryption=s3.BucketEncryption.KMS if self.data_key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=self.data_key,
            bucket_key_enabled=True if self.data_key else None,  # one KMS call per object
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="data/",
            object_lock_enabled=True if lock != "none" else None,
            object_lock_default_retention=(
                None
                if lock == "none"
                else getattr(s3.ObjectLockRetention, lock)(Duration.days(config.object_lock_days))
            ),
            lifecycle_rules=lifecycle_rules(config.data_retention_days),
            removal_policy=removal,
        )
        self.traces_table = self._table(
            "Traces",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            removal=removal,
            config=config,
            protected=True,
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
            config=config,
            protected=True,
        )
        self.idempotency_table = self._table(
            "Idempotency",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute="expiration",
            removal=RemovalPolicy.DESTROY,  # records expire after 24 h anyway
            config=config,
            protected=False,
        )
        self.backup_vault: backup.BackupVault | None = None
        self.backup_plan = self._backup_plan(config, removal) if config.backup_plan else None

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

    def _data_key(self, config: StackConfig) -> kms.Key:
        """The bucket's and tables' key. Its policy lets S3 and DynamoDB use it for any
        principal of this account that IAM lets read or write the data, as the AWS
        managed keys do: each role's object and item grants stay what decides access,
        and disabling the key makes every object and item unreadable at once."""
        key = kms.Key(
            self,
            "DataKey",
            description=f"{config.prefix}: encrypts the data bucket and the tables",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,  # data encrypted with it may outlive the stack
            pending_window=Duration.days(30),
        )
        stack = Stack.of(self)
        key.add_to_resource_policy(
            iam.PolicyStatement(
                actions=list(DATA_KEY_ACTIONS),
                principals=[iam.AnyPrincipal()],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={
                    "StringEquals": {
                        "kms:CallerAccount": stack.account,
                        "kms:ViaService": [
                            f"s3.{stack.region}.amazonaws.com",
                            f"dynamodb.{stack.region}.amazonaws.com",
                        ],
                    }
                },
            )
        )
        return key

    def _backup_plan(self, config: StackConfig, removal: RemovalPolicy) -> backup.BackupPlan:
        """Daily backups of the traces and tokens tables into a vault of their own (point-in-
        time recovery covers 35 days; a backup is kept `backup_retention_days`). The bucket
        is not backed up: versioning and Object Lock already keep every object's bytes."""
        vault = backup.BackupVault(
            self,
            "BackupVault",
            backup_vault_name=f"{config.prefix}-tables",
            encryption_key=self.data_key,
            removal_policy=removal,
        )
        plan = backup.BackupPlan(
            self, "BackupPlan", backup_plan_name=f"{config.prefix}-tables", backup_vault=vault
        )
        plan.add_rule(
            backup.BackupPlanRule(
                rule_name="daily",
                schedule_expression=events.Schedule.cron(hour=BACKUP_HOUR_UTC, minute="0"),
                delete_after=Duration.days(config.backup_retention_days),
            )
        )
        selection = plan.add_selection(
            "Tables",
            resources=[
                backup.BackupResource.from_dynamo_db_table(table)
                for table in (self.traces_table, self.tokens_table)
            ],
        )
        acknowledge(
            selection,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSBackupServiceRolePolicyForBackup]",
            "AWS Backup's own service role policy: what a backup job needs changes with the "
            "service, and only backup.amazonaws.com assumes this role.",
        )
        self.backup_vault = vault
        return plan

    def _table(
        self,
        construct_id: str,
        *,
        partition_key: dynamodb.Attribute,
        removal: RemovalPolicy,
        config: StackConfig,
        protected: bool,
        sort_key: dynamodb.Attribute | None = None,
        time_to_live_attribute: str | None = None,
    ) -> dynamodb.Table:
        """`protected`: deletion protection when the stage asks for it (the idempotency
        table holds nothing that outlives 24 hours)."""
        return dynamodb.Table(
            self,
            construct_id,
            partition_key=partition_key,
            sort_key=sort_key,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=(
                dynamodb.TableEncryption.CUSTOMER_MANAGED
                if self.data_key
                else dynamodb.TableEncryption.AWS_MANAGED
            ),
            encryption_key=self.data_key,
            deletion_protection=True if protected and config.deletion_protection else None,
            time_to_live_attribute=time_to_live_attribute,
            removal_policy=removal,
        )


def lifecycle_rules(retention_days: int) -> list[s3.LifecycleRule]:
    """Abort abandoned uploads, drop replaced versions, move objects to colder classes as
    they age and, with a retention, expire them (a locked version stays until its lock
    ends: S3 only adds a delete marker, and the noncurrent rule removes it after)."""
    keeps = retention_days == 0
    transitions = [
        s3.Transition(storage_class=storage_class, transition_after=Duration.days(days))
        for storage_class, days in (
            (s3.StorageClass.INFREQUENT_ACCESS, INFREQUENT_ACCESS_AFTER_DAYS),
            (s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, GLACIER_INSTANT_AFTER_DAYS),
        )
        if keeps or days < retention_days
    ]
    rules = [
        s3.LifecycleRule(
            id="abort-incomplete-multipart",
            abort_incomplete_multipart_upload_after=Duration.days(MULTIPART_ABORT_DAYS),
        ),
        s3.LifecycleRule(
            id="expire-noncurrent",
            noncurrent_version_expiration=Duration.days(NONCURRENT_VERSIONS_KEPT_DAYS),
        ),
        # A delete marker left with no versions behind it is removed.
        s3.LifecycleRule(id="remove-expired-delete-markers", expired_object_delete_marker=True),
    ]
    if transitions:
        rules.append(s3.LifecycleRule(id="age-to-colder-classes", transitions=transitions))
    if not keeps:
        rules.append(s3.LifecycleRule(id="expire", expiration=Duration.days(retention_days)))
    return rules
