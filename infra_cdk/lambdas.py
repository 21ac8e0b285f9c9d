"""Lambda functions: one role, one log group and one set of alarms per function."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra_cdk.assets import CORE_LAYER_DIR, deps_layer_dir, stage_function_code
from infra_cdk.config import LOG_RETENTION_DAYS, StackConfig
from infra_cdk.nag import acknowledge

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64


class SharedCode(Construct):
    """The function package and the two layers every prtrace Lambda runs with."""

    def __init__(self, scope: Construct, construct_id: str, *, build_deps: bool) -> None:
        super().__init__(scope, construct_id)
        self.code = lambda_.Code.from_asset(str(stage_function_code()))
        self.core_layer = lambda_.LayerVersion(
            self,
            "CoreLayer",
            code=lambda_.Code.from_asset(str(CORE_LAYER_DIR), exclude=["**/__pycache__"]),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="prtrace domain and adapters (layers/core/python)",
        )
        self.deps_layer = lambda_.LayerVersion(
            self,
            "DepsLayer",
            code=lambda_.Code.from_asset(str(deps_layer_dir(build=build_deps))),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="third-party packages pinned by uv.lock",
        )


class ServiceFunction(Construct):
    """A Lambda with its own least-privilege role: logs to its own group, X-Ray traces,
    and only what the caller grants on top."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        shared: SharedCode,
        handler: str,
        environment: dict[str, str],
        memory_mb: int = 512,
        timeout_s: int = 29,
        reserved_concurrency: int | None = None,
        description: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.timeout = Duration.seconds(timeout_s)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention(config),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{construct_id}: logs, traces and its own data access only",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[f"{self.log_group.log_group_arn}:*"],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"], resources=["*"]
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler,
            code=shared.code,
            layers=[shared.core_layer, shared.deps_layer],
            role=self.role,
            memory_size=memory_mb,
            timeout=self.timeout,
            reserved_concurrent_executions=reserved_concurrency,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            description=description,
            environment={
                "POWERTOOLS_SERVICE_NAME": f"prtrace-{construct_id.lower()}",
                "POWERTOOLS_METRICS_NAMESPACE": "prtrace",
                "POWERTOOLS_LOG_LEVEL": "INFO",
                "PRTRACE_STAGE": config.stage,
                **environment,
            },
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments/PutTelemetryRecords support no resource scoping.",
        )
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(_log_group_cfn(self))}.Arn>:*]",
            "Log streams are created inside this function's own log group.",
        )

    def allow(self, actions: list[str], resources: list[str]) -> None:
        """Grant this function's role exactly these actions on these resources."""
        self.role.add_to_policy(iam.PolicyStatement(actions=actions, resources=resources))


def _log_group_cfn(fn: ServiceFunction) -> logs.CfnLogGroup:
    child = fn.log_group.node.default_child
    assert isinstance(child, logs.CfnLogGroup)
    return child


def log_retention(config: StackConfig) -> logs.RetentionDays:
    return logs.RetentionDays[LOG_RETENTION_DAYS[config.log_retention_days]]
