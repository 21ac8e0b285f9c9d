"""The trace pipeline: the Step Functions state machine, its three Lambdas and the QA task.

The definition is `state_machines/trace_pipeline.asl.json`, filled in with `Fn::Sub` and
given inline (`DefinitionString`): that form deploys the same way to AWS and to the local
cloud. Every `${Name}` in the file must have a substitution here (an infra test checks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aws_cdk import Annotations, ArnFormat, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra_cdk.assets import QA_IMAGE_DOCKERFILE, ROOT, stage_qa_image_context
from infra_cdk.config import PIPELINE_TIMEOUT_S, QA_STATE_TIMEOUT_S, StackConfig
from infra_cdk.fargate_task import TaskSpec, hardened_task
from infra_cdk.lambdas import ServiceFunction, SharedCode, log_retention
from infra_cdk.nag import acknowledge
from infra_cdk.network import ENDPOINT_SUBNETS, TaskNetwork, regional
from infra_cdk.package_proxy import package_proxy
from infra_cdk.storage import ObjectKind, StorageConstruct
from prtrace.adapters.dynamodb import IN_PIPELINE_INDEX
from prtrace.adapters.sandbox.container import REQUIRED_CAPABILITIES
from prtrace.pipeline.record import ENDED_BADLY, EXECUTION_STATUS_CHANGE

ASL_PATH: Final = ROOT / "state_machines" / "trace_pipeline.asl.json"
QA_CONTAINER: Final = "qa-runner"
# The image's ENTRYPOINT, repeated in the task definition so the task says what it runs
# (the local cloud's ECS executor runs exactly this).
QA_ENTRYPOINT: Final = ("python", "-m", "functions.qa_runner")
# Root, so the runner can drop each test run to the sandbox uid: tests never share the uid
# of a process holding the task's secrets (prtrace.adapters.sandbox.container).
QA_USER: Final = "0:0"
QA_KEPT_CAPABILITIES: Final = tuple(ecs.Capability(name) for name in sorted(REQUIRED_CAPABILITIES))

# The QA task's presigned URLs outlive the RunQa state's timeout by a margin for the task's
# start (image pull, ENI) and the retries of a task that failed to start.
QA_GRANT_TTL_S: Final = QA_STATE_TIMEOUT_S + 900

# A trace still in the pipeline this long after finalize is stuck: an hour past the
# longest an execution may run (its start can lag finalize by a retried request).
STUCK_AFTER_S: Final = PIPELINE_TIMEOUT_S + 3600


class QaTaskConstruct(Construct):
    """The QA container on Fargate: its own isolated subnets and security group in the tasks'
    network (infra_cdk.network: only the S3, ECR, Logs and package proxy endpoints answer
    it, the DNS Firewall resolves only their names), a read-only root file system, started
    as root with only the capabilities its runner needs to drop each test run to the sandbox
    uid, CPU and memory from the configuration."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StackConfig, storage: StorageConstruct
    ) -> None:
        super().__init__(scope, construct_id)
        self.network = TaskNetwork(self, config=config, bucket=storage.bucket)
        self.vpc = self.network.vpc
        self.subnets = self.network.qa_subnets
        self.package_proxy = package_proxy(
            self,
            config=config,
            vpc=self.vpc,
            subnets=ec2.SubnetSelection(subnet_group_name=ENDPOINT_SUBNETS),
        )
        if config.qa_package_proxy:
            self.network.resolve(*regional("codeartifact", "*.d.codeartifact"))

        self.cluster = ecs.Cluster(
            self, "Cluster", vpc=self.vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
        )
        if "@sha256:" not in config.qa_base_image:
            Annotations.of(self).add_warning_v2(
                "prtrace:qa-base-image-unpinned",
                f"the QA image's base {config.qa_base_image} is pinned by tag only: set "
                "qa_base_image to name:tag@sha256:<digest> for a reproducible image",
            )
        task = hardened_task(
            self,
            config=config,
            vpc=self.vpc,
            spec=TaskSpec(
                container_name=QA_CONTAINER,
                image_context=stage_qa_image_context(),
                dockerfile=QA_IMAGE_DOCKERFILE,
                entry_point=QA_ENTRYPOINT,
                user=QA_USER,
                kept_capabilities=QA_KEPT_CAPABILITIES,
                cpu=config.qa_task_cpu,
                memory_mib=config.qa_task_memory_mb,
                log_prefix="qa",
                environment={
                    "PRTRACE_SANDBOX_BACKEND": "container",
                    "PRTRACE_QA_WALL_TIMEOUT_S": str(config.qa_wall_timeout_s),
                    # The dependency step reaches the private PyPI proxy only (none: nothing).
                    **self.package_proxy.task_environment,
                },
                firewall="QA task: HTTPS to its VPC endpoints and S3 only (no route out)",
                no_secrets="Plain settings only (limits); the run's presigned grant comes as "
                "an override at run time, never in the definition.",
            ),
        )
        self.security_group = task.security_group
        # Its image, its logs, its trace's objects (presigned), its package proxy: nothing
        # else, not even the export task's endpoints.
        self.network.admit(task.security_group, self.network.image_and_logs, "the QA task")
        self.network.allow_gateway(task.security_group, "s3")
        self.package_proxy.admit(task.security_group)
        self.task_definition = task.task_definition
        self.container = task.container
        # No data permission at all: the task moves its trace's objects through the
        # presigned requests of its grant (PRTRACE_QA_GRANT, from the PrepareQa step), so
        # test code that reached the task's credentials could use them on nothing.


def asl_state_machine(
    scope: Construct,
    config: StackConfig,
    asl_path: Path,
    substitutions: dict[str, str],
    description: str,
) -> tuple[sfn.StateMachine, iam.Role]:
    """A standard state machine from a committed ASL file, filled in with `Fn::Sub` and
    given inline (the form that deploys the same way to AWS and the local cloud), traced,
    logging every execution to its own group; and its role, to grant to.

    No `timeout=`: CDK drops it for a definition given as a string; the overall limit is
    the definition's own TimeoutSeconds (checked by the infra tests)."""
    log_group = logs.LogGroup(
        scope,
        "ExecutionLogs",
        retention=log_retention(config),
        removal_policy=RemovalPolicy.DESTROY,
    )
    role = iam.Role(
        scope,
        "StateMachineRole",
        assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
        description=description,
    )
    state_machine = sfn.StateMachine(
        scope,
        "StateMachine",
        definition_body=sfn.DefinitionBody.from_string(Fn.sub(asl_path.read_text(), substitutions)),
        state_machine_type=sfn.StateMachineType.STANDARD,
        role=role,
        tracing_enabled=True,
        logs=sfn.LogOptions(
            destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False
        ),
    )
    return state_machine, role


def grant_run_task_sync(
    role: iam.Role, task_definition: ecs.TaskDefinition, cluster: ecs.ICluster
) -> None:
    """What a state machine needs to run this task with `ecs:runTask.sync` on this cluster
    (the integration's documented policy): run it, watch and stop it, pass its roles, and
    the rule Step Functions manages to learn that the task stopped."""
    on_cluster = {"ArnEquals": {"ecs:cluster": cluster.cluster_arn}}
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["ecs:RunTask"],
            resources=[task_definition.task_definition_arn],
            conditions=on_cluster,
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["ecs:StopTask", "ecs:DescribeTasks"], resources=["*"], conditions=on_cluster
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[
                task_definition.task_role.role_arn,
                task_definition.obtain_execution_role().role_arn,
            ],
            conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resources=[
                Stack.of(role).format_arn(
                    service="events",
                    resource="rule",
                    resource_name="StepFunctionsGetEventsForECSTaskRule",
                )
            ],
        )
    )


class PipelineConstruct(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        storage: StorageConstruct,
        shared: SharedCode,
        data_environment: dict[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        self.assemble = ServiceFunction(
            self,
            "Assemble",
            config=config,
            shared=shared,
            handler="functions.assemble.handler.lambda_handler",
            environment=data_environment,
            memory_mb=1024,
            timeout_s=900,
            reserved_concurrency=config.reserved_concurrency("assemble"),
            description="Verify a finalized trace and write its document",
        )
        self.assemble.allow(
            ["dynamodb:GetItem", "dynamodb:Query"], [storage.traces_table.table_arn]
        )
        # It reads the chunks and artifacts (a missing one rejects the trace) and writes
        # the document (reading it back when a retry finds it written).
        readable: list[ObjectKind] = ["chunk", "artifact", "document", "manifest_draft"]
        storage.grant_objects(self.assemble.role, readable, ["s3:GetObject"])
        storage.grant_listing(self.assemble.role, ["chunk", "artifact"])
        storage.grant_objects(self.assemble.role, ["document", "manifest_draft"], ["s3:PutObject"])
        self.assemble.allow(["secretsmanager:GetSecretValue"], [storage.integrity_key.secret_arn])

        judge_environment = {
            "PRTRACE_BUCKET": storage.bucket.bucket_name,
            "PRTRACE_JUDGE_MODE": config.judge_mode,
            "PRTRACE_OPENAI_SECRET_NAME": config.openai_secret_name,
        }
        if config.judge_model:
            judge_environment["PRTRACE_JUDGE_MODEL"] = config.judge_model
        if config.judge_models:
            judge_environment["PRTRACE_JUDGE_MODELS"] = ",".join(config.judge_models)
        if config.judge_openai_base_url:
            judge_environment["OPENAI_BASE_URL"] = config.judge_openai_base_url
        self.judge = ServiceFunction(
            self,
            "Judge",
            config=config,
            shared=shared,
            handler="functions.judge.handler.lambda_handler",
            environment=judge_environment,
            memory_mb=1536,  # 100,000 events: ~385 MB peak (make bench); memory is CPU here
            timeout_s=600,
            reserved_concurrency=config.reserved_concurrency("judge"),
            description="Score a trace on the rubric (OpenAI or the offline judge)",
        )
        # It reads the document, the QA report and the workspace snapshots (artifacts: the
        # patch the model is shown) and writes its result (reading it first: a retry
        # returns the stored one).
        readable = ["document", "qa_report", "judge_result", "artifact"]
        storage.grant_objects(self.judge.role, readable, ["s3:GetObject"])
        # Listing artifacts makes a snapshot that is gone a 404 (the edits stand in), not a 403.
        storage.grant_listing(self.judge.role, ["document", "judge_result", "artifact"])
        storage.grant_objects(self.judge.role, ["judge_result"], ["s3:PutObject"])
        # The operator creates and fills the secret; the stack only names it.
        self.judge.allow(
            ["secretsmanager:GetSecretValue"],
            [
                stack.format_arn(
                    service="secretsmanager",
                    resource="secret",
                    resource_name=f"{config.openai_secret_name}-??????",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
        )

        self.record = ServiceFunction(
            self,
            "Record",
            config=config,
            shared=shared,
            handler="functions.record.handler.lambda_handler",
            environment=data_environment,
            memory_mb=512,
            timeout_s=60,
            reserved_concurrency=config.reserved_concurrency("record"),
            description="Record a trace's final status and results",
        )
        self.record.allow(
            ["dynamodb:GetItem", "dynamodb:UpdateItem"], [storage.traces_table.table_arn]
        )
        # It reads the QA report and the judge result into the outcome, completes the
        # draft manifest into the signed one (reading it back when a retry finds it), and
        # reads the document for the events table.
        storage.grant_objects(
            self.record.role,
            ["qa_report", "judge_result", "manifest_draft", "manifest", "document"],
            ["s3:GetObject"],
        )
        # (No listing of the draft: Assemble always wrote it before Record runs; were it
        # gone, the 403 fails the step, as it should.)
        # An ended trace's row in the Parquet traces table, a complete one's events in the
        # events table (each written once, conditionally).
        storage.grant_objects(self.record.role, ["trace_table", "event_table"], ["s3:PutObject"])
        # Listing the document lets a missing one answer 404 (no events file), not 403.
        storage.grant_listing(self.record.role, ["qa_report", "document"])
        storage.grant_objects(self.record.role, ["manifest", "attestation"], ["s3:PutObject"])

        self.sweeper = ServiceFunction(
            self,
            "Sweeper",
            config=config,
            shared=shared,
            handler="functions.sweeper.handler.lambda_handler",
            environment=data_environment | {"PRTRACE_STUCK_AFTER_S": str(STUCK_AFTER_S)},
            memory_mb=256,
            timeout_s=300,
            reserved_concurrency=config.reserved_concurrency("sweeper"),
            description="End traces the pipeline left in progress past its timeout",
        )
        self.sweeper.allow(
            ["dynamodb:Query"], [f"{storage.traces_table.table_arn}/index/{IN_PIPELINE_INDEX}"]
        )
        self.sweeper.allow(
            ["dynamodb:GetItem", "dynamodb:UpdateItem"], [storage.traces_table.table_arn]
        )
        # The row of a trace it ended, in the Parquet traces table (written once).
        storage.grant_objects(self.sweeper.role, ["trace_table"], ["s3:PutObject"])
        events.Rule(
            self,
            "SweepHourly",
            description="End traces stuck in the pipeline",
            schedule=events.Schedule.rate(Duration.hours(1)),
            targets=[targets.LambdaFunction(self.sweeper.function, retry_attempts=2)],
        )

        self.qa = QaTaskConstruct(self, "Qa", config=config, storage=storage)
        self.qa_grant = ServiceFunction(
            self,
            "QaGrant",
            config=config,
            shared=shared,
            handler="functions.qa_grant.handler.lambda_handler",
            environment={
                "PRTRACE_BUCKET": storage.bucket.bucket_name,
                "PRTRACE_QA_GRANT_TTL_S": str(QA_GRANT_TTL_S),
                # Where it asks for the PyPI proxy's read token the grant carries (if any).
                **self.qa.package_proxy.token_environment,
            },
            memory_mb=256,
            timeout_s=30,
            description="Sign the QA task's presigned requests for one trace",
        )
        # A presigned request does only what its signer may: read the trace's document and
        # snapshots, write its QA report and QA's artifacts (the grant narrows each to one
        # trace). No listing: a missing object is a 403, which the task reads as absent.
        storage.grant_objects(self.qa_grant.role, ["document", "artifact"], ["s3:GetObject"])
        storage.grant_objects(self.qa_grant.role, ["qa_report", "artifact"], ["s3:PutObject"])
        self.qa.package_proxy.grant_read_token(self.qa_grant.role)

        self.state_machine = self._state_machine(config, storage)
        self.execution_ended = self._record_ended_executions()

    def _record_ended_executions(self) -> events.Rule:
        """An execution that times out, is aborted, or fails where no Catch leads to Record
        (RecordFailure itself failing) never records its trace: EventBridge hands such
        executions to Record, which fails the trace unless it already ended."""
        return events.Rule(
            self,
            "ExecutionEnded",
            description="Pipeline executions that ended FAILED, TIMED_OUT or ABORTED -> Record",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=[EXECUTION_STATUS_CHANGE],
                detail={
                    "stateMachineArn": [self.state_machine.state_machine_arn],
                    "status": list(ENDED_BADLY),
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.record.function,
                    retry_attempts=8,
                    max_event_age=Duration.hours(24),
                )
            ],
        )

    def _state_machine(self, config: StackConfig, storage: StorageConstruct) -> sfn.StateMachine:
        qa = self.qa
        subnets = qa.subnets
        substitutions = {
            "TracesTableName": storage.traces_table.table_name,
            "AssembleFunctionArn": self.assemble.function.function_arn,
            "QaGrantFunctionArn": self.qa_grant.function.function_arn,
            "JudgeFunctionArn": self.judge.function.function_arn,
            "RecordFunctionArn": self.record.function.function_arn,
            "QaClusterArn": qa.cluster.cluster_arn,
            "QaTaskDefinitionArn": qa.task_definition.task_definition_arn,
            "QaContainerName": QA_CONTAINER,
            "QaSubnetA": subnets[0].subnet_id,
            "QaSubnetB": subnets[1 % len(subnets)].subnet_id,
            "QaSecurityGroupId": qa.security_group.security_group_id,
        }
        state_machine, role = asl_state_machine(
            self,
            config,
            ASL_PATH,
            substitutions,
            "Trace pipeline: its three functions, the QA task and status updates",
        )
        # The definition invokes the functions by their unqualified ARNs, never a version.
        functions = [self.assemble, self.qa_grant, self.judge, self.record]
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[fn.function.function_arn for fn in functions],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["dynamodb:UpdateItem"], resources=[storage.traces_table.table_arn]
            )
        )
        grant_run_task_sync(role, qa.task_definition, qa.cluster)
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "QA task ids are unknown until run (StopTask/DescribeTasks are scoped to the QA "
            "cluster by condition); X-Ray and log delivery take no resource.",
        )
        return state_machine
