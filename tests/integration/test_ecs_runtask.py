"""ECS RunTask on the local cloud: moto records the task, the executor hook runs its
container's command, keeps it RUNNING meanwhile and reports STOPPED with the exit code."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from local_cloud.cloud import LocalCloudInfo
from tests.local_cloud import aws

COMMAND = [
    "python",
    "-c",
    "import os, sys; open(os.environ['OUT'], 'w').write(os.environ['GREETING']); sys.exit(3)",
]


def test_run_task_runs_the_container_command(cloud: LocalCloudInfo, tmp_path: Path) -> None:
    ecs, ec2 = aws(cloud, "ecs"), aws(cloud, "ec2")
    name = f"it-{uuid.uuid4().hex[:8]}"
    cluster = ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    # moto 5.2.5 fails awsvpc RunTask in a VPC without DNS hostnames (its ENI then has no
    # private_dns_name); AWS's default VPCs and CDK's ec2.Vpc have them enabled.
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=name, Description="integration test", VpcId=vpc)[
        "GroupId"
    ]
    out = tmp_path / "greeting.txt"
    definition = ecs.register_task_definition(
        family=name,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "hello",
                "image": "public.ecr.aws/docker/library/python:3.12-slim",
                "essential": True,
                "memory": 512,  # moto needs a container-level memory (AWS would not)
                "command": COMMAND,
                "environment": [{"name": "OUT", "value": str(out)}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]

    started = ecs.run_task(
        cluster=cluster,
        taskDefinition=definition,
        launchType="FARGATE",
        count=1,
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": [subnet],
                "securityGroups": [group],
                "assignPublicIp": "DISABLED",
            }
        },
        overrides={
            "containerOverrides": [
                {"name": "hello", "environment": [{"name": "GREETING", "value": "hello, ecs"}]}
            ]
        },
    )
    assert started["failures"] == []
    (task,) = started["tasks"]
    assert task["lastStatus"] == "RUNNING"  # the executor has only just been handed the task
    task_arn = task["taskArn"]

    statuses = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        (described,) = ecs.describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"]
        statuses.append(described["lastStatus"])
        if described["lastStatus"] == "STOPPED":
            break
        time.sleep(0.1)
    assert statuses[-1] == "STOPPED", statuses
    assert set(statuses) <= {"RUNNING", "STOPPED"}
    (container,) = described["containers"]
    assert container["exitCode"] == 3
    assert container["lastStatus"] == "STOPPED"
    assert described["stoppedReason"] == "Essential container in task exited"
    assert out.read_text() == "hello, ecs"
    (attachment,) = described["attachments"]  # the awsvpc network interface in our subnet
    assert attachment["type"] == "ElasticNetworkInterface"
    assert {"name": "subnetId", "value": subnet} in attachment["details"]
