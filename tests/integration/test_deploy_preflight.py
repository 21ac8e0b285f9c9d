"""`make deploy`'s preflight against the local cloud, read as it reads AWS (boto3 against
the endpoint): an account whose Lambda concurrency quota is a new account's 10 and a
judge whose OpenAI secret is missing stop `make deploy` before `cdk bootstrap`, with the
fixes; a ready account passes. moto enforces the quota MOTO_LAMBDA_CONCURRENCY_QUOTA sets,
and the local cloud answers GetAccountSettings with it (local_cloud/moto_patches.py)."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from infra_cdk.config import StackConfig
from infra_cdk.preflight import Boto3AccountReader, BuildHostFacts, Severity, failed, run
from local_cloud.cloud import LocalCloudInfo
from local_cloud.moto_patches import LAMBDA_QUOTA_VARIABLE
from tests.local_cloud import aws

ROOT = Path(__file__).resolve().parents[2]
READY_HOST = BuildHostFacts(
    docker_error=None,
    machine="aarch64",
    arm64_emulation=False,
    buildx_platforms=("linux/arm64",),
    node_major=24,
)


class ReadyHost:
    def read(self) -> BuildHostFacts:
        return READY_HOST


def test_make_deploy_stops_before_bootstrap_on_a_low_quota_and_a_missing_secret(
    cloud: LocalCloudInfo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(LAMBDA_QUOTA_VARIABLE, "10")
    secret = f"prtrace-test/{uuid.uuid4().hex[:8]}"
    cdk_calls = tmp_path / "cdk-calls"
    fake_cdk = tmp_path / "cdk"
    fake_cdk.write_text(f'#!/bin/sh\necho "$@" >> {cdk_calls}\n')
    fake_cdk.chmod(0o755)
    stacks_before = {
        s["StackName"] for s in aws(cloud, "cloudformation").describe_stacks()["Stacks"]
    }

    done = subprocess.run(
        ["make", "-s", "deploy", "STAGE=prod", f"CDK={fake_cdk}",
         f"PREFLIGHT_ARGS=--endpoint-url {cloud.aws_endpoint} --region us-east-1 "
         f"-c judge_mode=openai -c openai_secret_name={secret} -c alarm_emails=ops@example.com"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("PRTRACE_")},
    )  # fmt: skip

    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "preflight failed: nothing was deployed" in output
    # The quota, as the local cloud reports it, and the settings that fit it.
    assert "quota of 10" in output
    assert "PRTRACE_AUTHORIZER_RESERVED_CONCURRENCY=none" in output
    assert "PRTRACE_API_RESERVED_CONCURRENCY=none" in output
    # The judge's secret, with the command that creates it.
    assert f"aws secretsmanager create-secret --name {secret}" in output
    # Nothing ran after the preflight, and nothing was deployed.
    assert not cdk_calls.exists(), cdk_calls.read_text()
    stacks_after = {
        s["StackName"] for s in aws(cloud, "cloudformation").describe_stacks()["Stacks"]
    }
    assert stacks_after == stacks_before
    assert "prtrace-prod" not in stacks_after


def test_a_ready_account_passes_and_auto_mode_only_warns_about_the_secret(
    cloud: LocalCloudInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LAMBDA_QUOTA_VARIABLE, "1000")
    secret = f"prtrace-test/{uuid.uuid4().hex[:8]}"
    reader = Boto3AccountReader(endpoint_url=cloud.aws_endpoint, region="us-east-1")

    def preflight(**settings: str) -> dict[str, Severity]:
        config = StackConfig.resolve(
            {
                "stage": "prod",
                "alarm_emails": "ops@example.com",
                "openai_secret_name": secret,
                **settings,
            }
        )
        findings = run(config, reader, ReadyHost())
        assert not failed(findings), [f.render() for f in findings]
        return {f.check: f.severity for f in findings}

    # The local cloud's deployment left it bootstrapped as `cdk bootstrap` does, and the
    # stack's 31 reserved executions leave 969 of 1,000 unreserved.
    auto = preflight(judge_mode="auto")
    assert auto["concurrency"] is Severity.OK
    assert auto["bootstrap"] is Severity.OK
    assert auto["secrets"] is Severity.WARN
    aws(cloud, "secretsmanager").create_secret(Name=secret, SecretString='{"api_key": "sk-test"}')
    assert preflight(judge_mode="openai")["secrets"] is Severity.OK
