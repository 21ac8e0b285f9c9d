"""The dataset export job: a Step Functions state machine running one Fargate task per
export (`state_machines/dataset_export.asl.json`, filled in with `Fn::Sub` like the trace
pipeline's). A container, not a Lambda: an export of many traces may run for longer than
15 minutes, and its Parquet files are written by pyarrow (too big for the functions'
shared layer), the same writer `prtrace export` uses, so both give the same bytes.

The task runs in the tasks' VPC (infra_cdk.network) in its own isolated subnets with its
own security group: it reaches S3 and DynamoDB through gateway endpoints (the DynamoDB one
routes for its subnets only, for the traces table only) and KMS through an interface
endpoint that admits this task alone; the QA task reaches neither.
Its role reads what an export reads (the traces table, documents, QA reports, judge
results, artifacts) and writes only an export's files, manifest, signature and error.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import ArnFormat, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra_cdk.assets import EXPORT_IMAGE_DOCKERFILE, ROOT, stage_export_image_context
from infra_cdk.config import StackConfig
from infra_cdk.fargate_task import TaskSpec, hardened_task
from infra_cdk.nag import acknowledge
from infra_cdk.network import EXPORT_SUBNETS, regional
from infra_cdk.pipeline import QaTaskConstruct, asl_state_machine, grant_run_task_sync
from infra_cdk.provenance import SigningKeyConstruct
from infra_cdk.storage import ObjectKind, StorageConstruct

ASL_PATH: Final = ROOT / "state_machines" / "dataset_export.asl.json"
EXPORT_CONTAINER: Final = "export-job"
EXPORT_ENTRYPOINT: Final = ("python", "-m", "functions.export_job")
EXPORT_USER: Final = "10001:10001"
EXPORT_TASK_CPU: Final = 1024
EXPORT_TASK_MEMORY_MB: Final = 8192  # every selected trace's rows are held until written

# What the task reads, and what it writes (prtrace.dataset.job). Reads of objects that may
# be missing (a trace QA skipped, an export whose request is gone, the manifest an attempt
# looks for first) need the listing grant: S3 answers 404 only to a caller that may list.
MAY_BE_MISSING: Final[list[ObjectKind]] = [
    "document", "qa_report", "judge_result", "artifact", "export_request", "export_manifest",
]  # fmt: skip
# What an attempt started again reads back after a 412: an earlier attempt's, there.
READ_BACK: Final[list[ObjectKind]] = ["export_file", "export_envelope"]
WRITES: Final[list[ObjectKind]] = [
    "export_file", "export_manifest", "export_envelope", "export_error",
]  # fmt: skip


class ExportJobConstruct(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        storage: StorageConstruct,
        qa: QaTaskConstruct,
        signing: SigningKeyConstruct,
    ) -> None:
        super().__init__(scope, construct_id)
        network = qa.network
        dynamodb = qa.vpc.add_gateway_endpoint(
            "DynamoDb",
            service=ec2.GatewayVpcEndpointAwsService.DYNAMODB,
            subnets=[ec2.SubnetSelection(subnet_group_name=EXPORT_SUBNETS)],
        )
        dynamodb.add_to_policy(
            iam.PolicyStatement(
                principals=[iam.AnyPrincipal()],
                actions=["dynamodb:Query"],
                resources=[storage.traces_table.table_arn],
            )
        )
        kms = network.interface_endpoint(
            self, "Kms", ec2.InterfaceVpcEndpointAwsService.KMS, "KMS", ["kms"]
        )
        kms.add_to_policy(
            iam.PolicyStatement(
                principals=[iam.AnyPrincipal()],
                actions=["kms:Sign", "kms:GetPublicKey"],
                resources=[signing.key.key_arn],
            )
        )
        network.resolve(*regional("dynamodb"))
        task = hardened_task(
            self,
            config=config,
            vpc=qa.vpc,
            spec=TaskSpec(
                container_name=EXPORT_CONTAINER,
                image_context=stage_export_image_context(),
                dockerfile=EXPORT_IMAGE_DOCKERFILE,
                entry_point=EXPORT_ENTRYPOINT,
                user=EXPORT_USER,
                cpu=EXPORT_TASK_CPU,
                memory_mib=EXPORT_TASK_MEMORY_MB,
                log_prefix="export",
                environment={
                    "PRTRACE_TRACES_TABLE": storage.traces_table.table_name,
                    "PRTRACE_BUCKET": storage.bucket.bucket_name,
                    "PRTRACE_SIGNING_KEY_ID": signing.key.key_arn,
                },
                firewall="Export task: HTTPS to its VPC endpoints, S3 and DynamoDB only",
                no_secrets="Plain settings only (table, bucket, key ARN); no secret is passed to "
                "the task.",
            ),
        )
        self.security_group = task.security_group
        network.admit(task.security_group, [*network.image_and_logs, kms], "the export task")
        network.allow_gateway(task.security_group, "s3")
        network.allow_gateway(task.security_group, "dynamodb")
        self.task_definition = task.task_definition
        self.container = task.container
        role = self.task_definition.task_role
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Query"], resources=[storage.traces_table.table_arn]
            )
        )
        storage.grant_objects(role, [*MAY_BE_MISSING, *READ_BACK], ["s3:GetObject"])
        storage.grant_listing(role, MAY_BE_MISSING)
        storage.grant_objects(role, WRITES, ["s3:PutObject"])
        signing.grant_sign(role)
        self.state_machine = self._state_machine(config, qa)

    def _state_machine(self, config: StackConfig, qa: QaTaskConstruct) -> sfn.StateMachine:
        subnets = qa.network.export_subnets
        substitutions = {
            "ClusterArn": qa.cluster.cluster_arn,
            "ExportTaskDefinitionArn": self.task_definition.task_definition_arn,
            "ExportContainerName": EXPORT_CONTAINER,
            "SubnetA": subnets[0].subnet_id,
            "SubnetB": subnets[1 % len(subnets)].subnet_id,
            "SecurityGroupId": self.security_group.security_group_id,
        }
        state_machine, role = asl_state_machine(
            self, config, ASL_PATH, substitutions, "Dataset export: runs the export task"
        )
        grant_run_task_sync(role, self.task_definition, qa.cluster)
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "Export task ids are unknown until run (StopTask/DescribeTasks are scoped to the "
            "cluster by condition); X-Ray and log delivery take no resource.",
        )
        return state_machine

    def grant_start_and_read(self, role: iam.IRole) -> None:
        """What the API needs: start an export's execution and read its state."""
        machine = self.state_machine
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["states:StartExecution"], resources=[machine.state_machine_arn]
            )
        )
        executions = Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{machine.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[executions])
        )
        cfn = machine.node.default_child
        assert isinstance(cfn, sfn.CfnStateMachine)
        stack = Stack.of(self)
        name = f"<{stack.get_logical_id(cfn)}.Name>"
        region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
        account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:"
            f"{region}:{account}:execution:{name}:*]",
            "One export's execution is named by its id, known only at run time.",
        )
