"""The prtrace stack: storage, the ingestion API, the trace pipeline and their monitoring."""

from __future__ import annotations

from aws_cdk import CfnOutput, Fn, Stack, Tags
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra_cdk.api import HttpApiConstruct
from infra_cdk.config import StackConfig
from infra_cdk.dashboard import OperationsDashboard
from infra_cdk.export_job import ExportJobConstruct
from infra_cdk.lambdas import ServiceFunction, SharedCode
from infra_cdk.monitoring import MonitoringConstruct
from infra_cdk.pipeline import PipelineConstruct
from infra_cdk.provenance import SigningKeyConstruct
from infra_cdk.query import QueryConstruct
from infra_cdk.storage import ObjectKind, StorageConstruct
from infra_cdk.viewer_site import api_export_name, bucket_export_name
from prtrace.storage_keys import READINESS_PREFIX


def tag_everything(scope: Construct, config: StackConfig) -> None:
    """Tags on every resource that takes tags (and, through the stack, on what
    CloudFormation creates for it): what it belongs to, for cost and ownership reports."""
    tags = {"project": "prtrace", "stage": config.stage, "stage-profile": config.profile}
    if config.owner:
        tags["owner"] = config.owner
    if config.cost_centre:
        tags["cost-centre"] = config.cost_centre
    for key, value in tags.items():
        Tags.of(scope).add(key, value)


class PrtraceStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        build_deps: bool = True,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config = config
        tag_everything(self, config)
        self.storage = StorageConstruct(self, "Storage", config=config)
        self.shared_code = SharedCode(self, "SharedCode", build_deps=build_deps)
        self.monitoring = MonitoringConstruct(self, "Monitoring", config=config)

        self.authorizer = ServiceFunction(
            self,
            "Authorizer",
            config=config,
            shared=self.shared_code,
            handler="functions.authorizer.handler.lambda_handler",
            environment={"PRTRACE_TOKENS_TABLE": self.storage.tokens_table.table_name},
            memory_mb=256,
            timeout_s=10,
            reserved_concurrency=config.reserved_concurrency("authorizer"),
            description="Bearer token -> tenant and scopes",
        )
        # Reads one token item; nothing else.
        self.authorizer.role.add_to_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem"], resources=[self.storage.tokens_table.table_arn]
            )
        )

        self.api_function = ServiceFunction(
            self,
            "Api",
            config=config,
            shared=self.shared_code,
            handler="functions.api.handler.lambda_handler",
            environment=self.data_environment(),
            memory_mb=1024,
            reserved_concurrency=config.reserved_concurrency("api"),
            description="prtrace ingestion API",
        )
        self._grant_api_data_access(self.api_function.role)

        self.pipeline = PipelineConstruct(
            self,
            "Pipeline",
            config=config,
            storage=self.storage,
            shared=self.shared_code,
            data_environment=self.data_environment(),
        )
        # Finalize starts one execution per trace (named by the trace id).
        state_machine = self.pipeline.state_machine
        self.api_function.function.add_environment(
            "PRTRACE_STATE_MACHINE_ARN", state_machine.state_machine_arn
        )
        self.api_function.role.add_to_policy(
            iam.PolicyStatement(
                actions=["states:StartExecution"], resources=[state_machine.state_machine_arn]
            )
        )

        # Trace manifests: Record signs them, the API publishes the public keys.
        self.signing = SigningKeyConstruct(self, "Provenance", config=config)
        self.signing.grant_sign(self.pipeline.record.role)
        self.pipeline.record.function.add_environment(
            "PRTRACE_SIGNING_KEY_ID", self.signing.key.key_arn
        )
        self.pipeline.record.function.add_environment(
            "PRTRACE_QA_IMAGE", self.pipeline.qa.container.image_name
        )
        self.signing.grant_publish(self.api_function.role)
        self.api_function.function.add_environment(
            "PRTRACE_SIGNING_KEY_IDS", ",".join(self.signing.published_arns)
        )
        # Dataset exports: the API starts the export job and links what it wrote.
        self.exports = ExportJobConstruct(
            self,
            "Export",
            config=config,
            storage=self.storage,
            qa=self.pipeline.qa,
            signing=self.signing,
        )
        self.exports.grant_start_and_read(self.api_function.role)
        self.api_function.function.add_environment(
            "PRTRACE_EXPORT_STATE_MACHINE_ARN", self.exports.state_machine.state_machine_arn
        )
        export_objects: list[ObjectKind] = [
            "export_request", "export_file", "export_manifest", "export_envelope", "export_error",
        ]  # fmt: skip
        self.storage.grant_objects(self.api_function.role, ["export_request"], ["s3:PutObject"])
        self.storage.grant_objects(self.api_function.role, export_objects, ["s3:GetObject"])
        # Reads that may find nothing (no manifest yet) answer 404 only with listing.
        probed: list[ObjectKind] = [
            "export_request", "export_manifest", "export_envelope", "export_error",
        ]  # fmt: skip
        self.storage.grant_listing(self.api_function.role, probed)
        # Athena over the Parquet traces table Record writes (infra_cdk.query).
        self.query = QueryConstruct(self, "Query", config=config, bucket=self.storage.bucket)

        self.http_api = HttpApiConstruct(
            self,
            "HttpApi",
            config=config,
            api_function=self.api_function.function,
            authorizer_function=self.authorizer.function,
        )
        api_functions = {"Authorizer": self.authorizer, "Api": self.api_function}
        pipeline_steps = {
            "Assemble": self.pipeline.assemble,
            "QaGrant": self.pipeline.qa_grant,
            "Judge": self.pipeline.judge,
            "Record": self.pipeline.record,
            "Sweeper": self.pipeline.sweeper,
        }
        tables = {
            "Traces": self.storage.traces_table,
            "Tokens": self.storage.tokens_table,
            "Idempotency": self.storage.idempotency_table,
        }
        monitoring = self.monitoring
        for name, fn in api_functions.items():
            monitoring.watch_function(name, fn, serves_api=True)
        for name, fn in pipeline_steps.items():
            monitoring.watch_function(name, fn, serves_api=False)
        monitoring.watch_api(self.http_api.api)
        monitoring.watch_state_machine(state_machine)
        monitoring.watch_export(self.exports.state_machine)
        monitoring.watch_qa_task(self.pipeline.qa.cluster, self.pipeline.qa.task_definition)
        for name, table in tables.items():
            monitoring.watch_table(name, table)
        monitoring.watch_judge()
        monitoring.watch_concurrency()
        if self.storage.backup_vault is not None:
            monitoring.watch_backups(self.storage.backup_vault.backup_vault_name)
        # Every EventBridge rule of the stack, the operations events' own included (last).
        monitoring.watch_rules(
            [
                child
                for child in self.node.find_all()
                if isinstance(child, events.CfnRule) and child not in monitoring.event_rules
            ]
            + monitoring.event_rules
        )
        self.dashboard = OperationsDashboard(
            self,
            "Operations",
            config=config,
            api=self.http_api.api,
            api_functions=api_functions,
            pipeline_steps=pipeline_steps,
            state_machine=state_machine,
            tables=tables,
            alarms=self.monitoring.alarms,
        )

        # Exported for the viewer's stack (infra_cdk.viewer): its CloudFront API origin, and
        # the artifact downloads its page may fetch.
        CfnOutput(
            self, "ApiEndpoint", value=self.http_api.url, export_name=api_export_name(config.prefix)
        )
        CfnOutput(
            self,
            "DataBucketName",
            value=self.storage.bucket.bucket_name,
            export_name=bucket_export_name(config.prefix),
        )
        CfnOutput(self, "TracesTableName", value=self.storage.traces_table.table_name)
        CfnOutput(self, "TokensTableName", value=self.storage.tokens_table.table_name)
        CfnOutput(self, "IdempotencyTableName", value=self.storage.idempotency_table.table_name)
        CfnOutput(self, "IntegrityKeySecretArn", value=self.storage.integrity_key.secret_arn)
        CfnOutput(self, "PipelineStateMachineArn", value=state_machine.state_machine_arn)
        CfnOutput(self, "ExportStateMachineArn", value=self.exports.state_machine.state_machine_arn)
        CfnOutput(self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn)
        self.signing.outputs(self.http_api.url)

    @property
    def availability_zones(self) -> list[str]:
        """Two zones of the deployment region, resolved at deploy time (Fn::GetAZs) rather
        than looked up at synth: the synth needs no AWS account, and the same template
        deploys to any region and to the local cloud."""
        return [Fn.select(index, Fn.get_azs()) for index in range(2)]

    def data_environment(self) -> dict[str, str]:
        """What prtrace.settings.Settings reads."""
        storage = self.storage
        return {
            "PRTRACE_TRACES_TABLE": storage.traces_table.table_name,
            "PRTRACE_TOKENS_TABLE": storage.tokens_table.table_name,
            "PRTRACE_IDEMPOTENCY_TABLE": storage.idempotency_table.table_name,
            "PRTRACE_BUCKET": storage.bucket.bucket_name,
            "PRTRACE_KEY_SECRET_NAME": storage.integrity_key.secret_arn,
        }

    def _grant_api_data_access(self, role: iam.Role) -> None:
        storage = self.storage
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:Query",
                    "dynamodb:ConditionCheckItem",
                ],
                resources=[storage.traces_table.table_arn],
            )
        )
        # Powertools idempotency records: claim, complete, release on failure. A claim that
        # finds a record gets it back with the refusal (ReturnValuesOnConditionCheckFailure),
        # so no GetItem.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                ],
                resources=[storage.idempotency_table.table_arn],
            )
        )
        # Ingestion stores chunks and artifacts (through presigned PUTs); the result routes
        # read the pipeline's products, and find out which are missing; the events route
        # reads the chunk bodies of an assembled trace.
        storage.grant_objects(role, ["chunk", "artifact"], ["s3:PutObject"])
        readable: list[ObjectKind] = ["artifact", "document", "qa_report", "judge_result"]
        storage.grant_objects(role, ["chunk", *readable], ["s3:GetObject"])
        storage.grant_listing(role, readable, prefixes=[READINESS_PREFIX])
        # A trace bundle's download links: the signed manifest, its signature, the chunks.
        bundle: list[ObjectKind] = ["manifest", "attestation", "chunk"]
        storage.grant_objects(role, bundle, ["s3:GetObject"])
        storage.grant_listing(role, ["manifest", "attestation"])
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"],
                resources=[storage.integrity_key.secret_arn],
            )
        )
