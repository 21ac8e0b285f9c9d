"""A hardened Fargate task, as the QA and export tasks both run: a security group that lets
only HTTPS out (to the VPC's endpoints: the isolated subnets have no route out), ARM64, one
container from a staged image context with a read-only root file system, a non-root user,
no Linux capabilities, an init process, task storage at /tmp as the only writable place,
and its own log group. One definition, so a hardening added to one task is in both.

The constructs are created in the caller's scope under the ids they always had, so the
synthesized logical ids do not change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from aws_cdk.aws_ecr_assets import Platform
from constructs import Construct

from infra_cdk.config import StackConfig
from infra_cdk.lambdas import log_retention
from infra_cdk.nag import acknowledge


@dataclass(frozen=True)
class TaskSpec:
    container_name: str
    image_context: Path  # staged by infra_cdk.assets
    dockerfile: str
    entry_point: Sequence[str]  # the image's ENTRYPOINT, so the task says what it runs
    user: str  # the image's non-root USER
    cpu: int
    memory_mib: int
    log_prefix: str
    environment: Mapping[str, str]
    firewall: str  # the security group's description
    egress: str  # what the HTTPS egress reaches
    no_secrets: str  # why cdk-nag's ECS2 (environment variables) does not apply


@dataclass(frozen=True)
class HardenedTask:
    security_group: ec2.SecurityGroup
    task_definition: ecs.FargateTaskDefinition
    container: ecs.ContainerDefinition


def hardened_task(
    scope: Construct, *, config: StackConfig, vpc: ec2.IVpc, spec: TaskSpec
) -> HardenedTask:
    security_group = ec2.SecurityGroup(
        scope,
        "TaskSecurityGroup",
        vpc=vpc,
        allow_all_outbound=False,
        description=spec.firewall,
    )
    security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), spec.egress)
    task_definition = ecs.FargateTaskDefinition(
        scope,
        "TaskDefinition",
        cpu=spec.cpu,
        memory_limit_mib=spec.memory_mib,
        runtime_platform=ecs.RuntimePlatform(
            cpu_architecture=ecs.CpuArchitecture.ARM64,
            operating_system_family=ecs.OperatingSystemFamily.LINUX,
        ),
        volumes=[ecs.Volume(name="tmp")],  # the only writable place: task storage at /tmp
    )
    log_group = logs.LogGroup(
        scope, "Logs", retention=log_retention(config), removal_policy=RemovalPolicy.DESTROY
    )
    linux = ecs.LinuxParameters(scope, "LinuxParameters", init_process_enabled=True)
    linux.drop_capabilities(ecs.Capability.ALL)
    container = task_definition.add_container(
        spec.container_name,
        container_name=spec.container_name,
        image=ecs.ContainerImage.from_asset(
            str(spec.image_context),
            file=spec.dockerfile,
            platform=Platform.LINUX_ARM64,
            build_args={"PYTHON_IMAGE": config.qa_base_image},
        ),
        entry_point=list(spec.entry_point),
        user=spec.user,
        readonly_root_filesystem=True,
        privileged=False,
        essential=True,
        memory_limit_mib=spec.memory_mib,
        linux_parameters=linux,
        logging=ecs.LogDriver.aws_logs(stream_prefix=spec.log_prefix, log_group=log_group),
        environment=dict(spec.environment),
    )
    container.add_mount_points(
        ecs.MountPoint(container_path="/tmp", source_volume="tmp", read_only=False)  # noqa: S108
    )
    acknowledge(task_definition, "AwsSolutions-ECS2", spec.no_secrets)
    acknowledge(
        task_definition.obtain_execution_role(),
        "AwsSolutions-IAM5[Resource::*]",
        "ecr:GetAuthorizationToken takes no resource (CDK's execution role policy).",
    )
    return HardenedTask(security_group, task_definition, container)
