"""The deploy preflight's checks (infra_cdk/preflight.py) on facts as the readers return
them; tests/integration/test_deploy_preflight.py reads them from the local cloud."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from infra_cdk.config import StackConfig
from infra_cdk.preflight import (
    AccountFacts,
    BuildHostFacts,
    SecretState,
    Severity,
    binfmt_enabled,
    buildx_platforms,
    check_bootstrap,
    check_concurrency,
    check_image_build,
    check_node,
    check_prefix_lists,
    check_secrets,
    check_stack_state,
    evaluate,
    failed,
    node_major,
)

SECRET = "prtrace/openai-api-key"
ACCOUNT = AccountFacts(
    account="111122223333",
    region="eu-west-1",
    concurrency_limit=1000,
    unreserved_concurrency=1000,
    bootstrap_status="CREATE_COMPLETE",
    bootstrap_version=30,
    bootstrap_output_version=30,
    leftover_bootstrap_resources=(),
    stack_status=None,
    secrets={SECRET: SecretState.PRESENT},
    prefix_lists={"s3": "pl-6da54004", "dynamodb": "pl-b3a742da"},
)
ARM_HOST = BuildHostFacts(
    docker_error=None,
    machine="aarch64",
    arm64_emulation=False,
    buildx_platforms=("linux/arm64",),
    node_major=24,
)


def config(**settings: object) -> StackConfig:
    return StackConfig.resolve({"stage": "prod", "alarm_emails": "ops@example.com", **settings})


def test_a_ready_account_and_machine_pass() -> None:
    findings = evaluate(config(), ACCOUNT, ARM_HOST)
    assert not failed(findings), [f.render() for f in findings]
    assert {f.check for f in findings} == {
        "concurrency", "bootstrap", "stack", "secrets", "image build", "node",
        "s3_prefix_list_id", "dynamodb_prefix_list_id",
    }  # fmt: skip


def test_a_new_accounts_quota_of_10_fails_with_the_settings_that_fit() -> None:
    facts = dataclasses.replace(ACCOUNT, concurrency_limit=10, unreserved_concurrency=10)
    finding = check_concurrency(config(), facts)
    assert finding.severity is Severity.FAIL
    assert "reserve 31" in finding.what
    assert "quota of 10" in finding.what
    for variable in ("AUTHORIZER", "API", "SWEEPER"):
        assert f"PRTRACE_{variable}_RESERVED_CONCURRENCY=none" in finding.fix
    assert "make deploy STAGE=prod" in finding.fix
    assert "--quota-code L-B99A9384" in finding.fix
    # The fix, applied, passes.
    fixed = config(
        authorizer_reserved_concurrency="none",
        api_reserved_concurrency="none",
        sweeper_reserved_concurrency="none",
    )
    assert check_concurrency(fixed, facts).severity is Severity.OK


def test_a_first_deploy_counts_what_other_functions_already_reserve() -> None:
    # 1000 quota, 880 reserved elsewhere: 120 unreserved, 31 more would leave 89.
    crowded = dataclasses.replace(ACCOUNT, unreserved_concurrency=120)
    assert check_concurrency(config(), crowded).severity is Severity.FAIL
    # An update: the stack's own reservations are already out of the unreserved pool.
    update = dataclasses.replace(crowded, stack_status="UPDATE_COMPLETE")
    assert check_concurrency(config(), update).severity is Severity.OK
    assert (
        check_concurrency(
            config(), dataclasses.replace(ACCOUNT, unreserved_concurrency=131)
        ).severity
        is Severity.OK
    )


@pytest.mark.parametrize(
    ("changes", "severity", "in_fix"),
    [
        ({"bootstrap_status": None, "bootstrap_version": None}, Severity.OK, ""),
        (
            {"bootstrap_status": None, "bootstrap_version": None,
             "leftover_bootstrap_resources": ("s3://cdk-hnb659fds-assets-111122223333-eu-west-1",)},
            Severity.FAIL, "aws s3 rb s3://cdk-hnb659fds-assets-111122223333-eu-west-1 --force",
        ),
        ({"bootstrap_status": "UPDATE_ROLLBACK_FAILED"}, Severity.FAIL, "continue-update-rollback"),
        ({"bootstrap_status": "ROLLBACK_COMPLETE"}, Severity.FAIL,
         "delete-stack --stack-name CDKToolkit"),
        ({"bootstrap_status": "UPDATE_IN_PROGRESS"}, Severity.FAIL, "wait"),
        ({"bootstrap_version": None}, Severity.FAIL,
         "aws ssm put-parameter --name /cdk-bootstrap/hnb659fds/version --type String --value 30"),
        ({"bootstrap_version": 4}, Severity.WARN, ""),
    ],
)  # fmt: skip
def test_bootstrap_states(changes: dict[str, object], severity: Severity, in_fix: str) -> None:
    finding = check_bootstrap(dataclasses.replace(ACCOUNT, **changes))  # type: ignore[arg-type]
    assert finding.severity is severity, finding.render()
    assert in_fix in finding.fix


def test_a_stack_stuck_in_a_failed_update_is_named_with_its_fix() -> None:
    stuck = dataclasses.replace(ACCOUNT, stack_status="UPDATE_ROLLBACK_FAILED")
    finding = check_stack_state(config(), stuck)
    assert finding.severity is Severity.FAIL
    assert "continue-update-rollback --stack-name prtrace-prod" in finding.fix
    assert check_stack_state(config(), ACCOUNT).severity is Severity.OK


@pytest.mark.parametrize(
    ("mode", "state", "severity"),
    [
        ("openai", SecretState.MISSING, Severity.FAIL),
        ("openai", SecretState.DELETING, Severity.FAIL),
        ("openai", SecretState.PRESENT, Severity.OK),
        ("auto", SecretState.MISSING, Severity.WARN),
        ("offline", SecretState.MISSING, None),
    ],
)
def test_the_judges_secret_is_required_by_openai_mode_and_advised_by_auto(
    mode: str, state: SecretState, severity: Severity | None
) -> None:
    findings = check_secrets(
        config(judge_mode=mode), dataclasses.replace(ACCOUNT, secrets={SECRET: state})
    )
    assert [f.severity for f in findings] == ([severity] if severity else [])
    if state is SecretState.MISSING and severity:
        assert f"aws secretsmanager create-secret --name {SECRET}" in findings[0].fix
    if state is SecretState.DELETING:
        assert "restore-secret" in findings[0].fix


def test_an_x86_machine_without_qemu_cannot_build_the_arm64_images() -> None:
    x86 = dataclasses.replace(ARM_HOST, machine="x86_64", buildx_platforms=("linux/amd64",))
    findings = check_image_build(x86)
    assert findings[0].severity is Severity.FAIL
    assert "qemu-user-static" in findings[0].fix
    emulated = dataclasses.replace(
        x86, arm64_emulation=True, buildx_platforms=("linux/amd64", "linux/arm64")
    )
    assert [f.severity for f in check_image_build(emulated)] == [Severity.OK]
    # Without buildx the legacy builder still builds: a warning.
    legacy = dataclasses.replace(emulated, buildx_platforms=None)
    assert [f.severity for f in check_image_build(legacy)] == [Severity.WARN]


def test_no_docker_engine_fails_the_image_build() -> None:
    findings = check_image_build(dataclasses.replace(ARM_HOST, docker_error="Cannot connect"))
    assert [f.severity for f in findings] == [Severity.FAIL]
    assert "Cannot connect" in findings[0].what


def test_node_below_the_maintained_lts_is_a_warning_and_none_a_failure() -> None:
    assert check_node(dataclasses.replace(ARM_HOST, node_major=20)).severity is Severity.WARN
    assert check_node(dataclasses.replace(ARM_HOST, node_major=None)).severity is Severity.FAIL
    assert check_node(ARM_HOST).severity is Severity.OK


def test_what_the_host_reader_parses(tmp_path: Path) -> None:
    inspect = (
        "Name:   default\nDriver: docker\nNodes:\nPlatforms: linux/amd64*, linux/arm64, linux/386\n"
    )
    assert buildx_platforms(inspect) == ("linux/amd64", "linux/arm64", "linux/386")
    assert buildx_platforms(None) is None
    assert node_major("v24.21.0\n") == 24
    assert node_major("") is None
    handler = tmp_path / "qemu-aarch64"
    handler.write_text("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n")
    assert binfmt_enabled(handler)
    handler.write_text("disabled\n")
    assert not binfmt_enabled(handler)
    assert not binfmt_enabled(tmp_path / "absent")


def test_unset_prefix_lists_warn_with_the_regions_ids_and_a_wrong_one_fails() -> None:
    unset = {f.check: f for f in check_prefix_lists(config(), ACCOUNT)}
    assert unset["s3_prefix_list_id"].severity is Severity.WARN
    assert unset["s3_prefix_list_id"].fix == "PRTRACE_S3_PREFIX_LIST_ID=pl-6da54004"
    assert unset["dynamodb_prefix_list_id"].fix == "PRTRACE_DYNAMODB_PREFIX_LIST_ID=pl-b3a742da"
    right = check_prefix_lists(
        config(s3_prefix_list_id="pl-6da54004", dynamodb_prefix_list_id="pl-b3a742da"), ACCOUNT
    )
    assert {f.severity for f in right} == {Severity.OK}
    (wrong, _) = check_prefix_lists(config(s3_prefix_list_id="pl-b3a742da"), ACCOUNT)
    assert wrong.severity is Severity.FAIL
    assert "pl-6da54004" in wrong.fix
