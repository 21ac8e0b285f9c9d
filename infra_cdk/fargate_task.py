"""A hardened Fargate task, as the QA and export tasks both run: a security group that lets
nothing out until the caller admits the task to its endpoints (infra_cdk.network), ARM64, one
container from a staged image context with a read-only root file system, an init process,
task storage at /tmp as the only writable place, and its own log group. One definition, so
a hardening added to one task is in both.

User and capabilities: a task that runs no untrusted code (export) runs as a non-root user
with no capabilities at all. The QA task runs untrusted tests, which must never share the
uid of a process holding the task's secrets, so it starts as root and its runner drops each
test run to the sandbox uid (prtrace.adapters.sandbox.container); it keeps only the
capabilities that needs. Fargate cannot add capabilities (`add` takes SYS_PTRACE only), so
those are kept by dropping every other one by name.

The constructs are created in the caller's scope under the ids they always had, so the
synthesized logical ids do not change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from aws_cdk.aws_ecr_assets import Platform
from constructs import Construct

from infra_cdk.config import StackConfig
from infra_cdk.lambdas import log_retention
from infra_cdk.nag import acknowledge

# Every capability ECS names (KernelCapabilities), "ALL" aside.
ALL_CAPABILITIES: Final = tuple(c for c in ecs.Capability if c is not ecs.Capability.ALL)


@dataclass(frozen=True)
class TaskSpec:
    container_name: str
    image_context: Path  # staged by infra_cdk.assets
    dockerfile: str
    entry_point: Sequence[str]  # the image's ENTRYPOINT, so the task says what it runs
    user: str  # the image's USER: non-root, or "0:0" for a runner that drops to its own
    cpu: int
    memory_mib: int
    log_prefix: str
    environment: Mapping[str, str]
    firewall: str  # the security group's description
    no_secrets: str  # why cdk-nag's ECS2 (environment variables) does not apply
    # Kept from the container runtime's default set, every other one dropped by name;
    # empty: none at all (drop ALL).
    kept_capabilities: Sequence[ecs.Capability] = ()


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
    # The init process (PID 1, ECS's) forwards StopTask's SIGTERM and reaps orphans; it
    # runs as the task's user and holds its environment.
    linux = ecs.LinuxParameters(scope, "LinuxParameters", init_process_enabled=True)
    if spec.kept_capabilities:
        linux.drop_capabilities(
            *(c for c in ALL_CAPABILITIES if c not in set(spec.kept_capabilities))
        )
    else:
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
