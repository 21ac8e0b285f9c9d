"""cdk_cli: how the local cloud runs the CDK CLI (the deploy itself: the deploy-local
integration test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from local_cloud.cdk_cli import CdkCliError, cli_environment, deploy_with_cdk_cli


def test_the_cli_sees_the_emulator_and_none_of_the_users_aws_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "a-real-session")
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", "999999999999")
    environment = cli_environment("http://localhost:4566", tmp_path / "cdk-home")
    assert "AWS_PROFILE" not in environment
    assert "AWS_SESSION_TOKEN" not in environment
    assert "CDK_DEFAULT_ACCOUNT" not in environment
    assert environment["AWS_ENDPOINT_URL"] == "http://localhost:4566"
    assert environment["AWS_ACCESS_KEY_ID"] == "local"
    # Its per-access-key account cache and the AWS config files are the local cloud's own.
    assert environment["CDK_HOME"] == str(tmp_path / "cdk-home")
    assert environment["AWS_CONFIG_FILE"].startswith(str(tmp_path))
    assert environment["AWS_SHARED_CREDENTIALS_FILE"].startswith(str(tmp_path))
    assert environment["CDK_DISABLE_CLI_TELEMETRY"] == "true"
    assert environment["HOME"]  # npm's and jsii's caches stay where they are


def test_a_failing_cli_step_names_the_command_and_the_log(tmp_path: Path) -> None:
    log_path = tmp_path / "logs" / "cdk-cli.log"
    with pytest.raises(CdkCliError) as failed:
        deploy_with_cdk_cli(
            "sh -c 'echo cannot reach the registry; exit 3' cdk",
            aws_endpoint="http://localhost:1",
            outdir=tmp_path / "cdk.out",
            context={},
            work_dir=tmp_path,
            log_path=log_path,
        )
    message = str(failed.value)
    assert "bootstrap" in message
    assert "exit 3" in message
    assert "cannot reach the registry" in message
    assert str(log_path) in message
    assert "cannot reach the registry" in log_path.read_text()


def test_an_external_emulator_gets_the_lambdas_dependency_layer(tmp_path: Path) -> None:
    # A LocalStack runs the functions itself: they need their third-party layer built.
    external = cli_environment("http://localhost:4566", tmp_path, build_deps=True)
    embedded = cli_environment("http://localhost:4566", tmp_path)
    assert external["PRTRACE_LAMBDA_DEPS"] == "build"
    assert embedded["PRTRACE_LAMBDA_DEPS"] == "skip"


def test_the_cdk_cli_may_deploy_into_an_external_endpoint(tmp_path: Path) -> None:
    from local_cloud.cloud import LocalCloud

    # Refused before: `--aws-endpoint URL --cdk-cli CMD` now bootstraps and deploys there.
    LocalCloud(state_dir=tmp_path, target_endpoint="http://localhost:1", cdk_cli="cdk")
