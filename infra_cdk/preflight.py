"""`make deploy`'s preflight: what would make a deploy fail or roll back, found before
anything is deployed, each with its fix.

`python -m infra_cdk.preflight [-c name=value ...] [--endpoint-url URL]` reads the account
(Lambda's concurrency quota, the CDK bootstrap stack and its version, the stack's state, the
secrets the stack names) and this machine (a Docker engine that can build the arm64 images,
the Node.js the CDK CLI runs on), prints one line per check, and exits 1 when any check
fails; warnings do not stop the deploy. The checks are plain functions of what was read
(`evaluate`); the reads are behind `AccountReader` and `BuildHostReader`.

Reserved concurrency is not sized at synth time from a live read of the quota: a template
must not change with whoever synthesizes it. The preflight reads the quota and says which
settings fit it instead.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Protocol

import typer

from infra_cdk.config import FUNCTIONS, ConfigError, StackConfig

BOOTSTRAP_STACK: Final = "CDKToolkit"
BOOTSTRAP_QUALIFIER: Final = "hnb659fds"
BOOTSTRAP_VERSION_PARAMETER: Final = f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version"
# What the synthesized stack's asset manifest requires (`requiresBootstrapStackVersion`).
REQUIRED_BOOTSTRAP_VERSION: Final = 6
# Lambda keeps this many executions unreserved in every account and region.
MIN_UNRESERVED: Final = 100
# Service Quotas' code of Lambda's "Concurrent executions".
LAMBDA_CONCURRENCY_QUOTA_CODE: Final = "L-B99A9384"
# The CDK CLI's Node.js: the oldest release line still maintained.
MIN_NODE_MAJOR: Final = 22
NODE_FIX: Final = "`make setup` installs Node.js 24 into .tools/node (first on make's PATH)"
BINFMT_AARCH64: Final = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
_IN_FLIGHT = re.compile(r"_IN_PROGRESS$")
_STUCK: Final = {"ROLLBACK_FAILED", "DELETE_FAILED", "UPDATE_ROLLBACK_FAILED", "CREATE_FAILED"}


class Severity(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Finding:
    check: str
    severity: Severity
    what: str
    fix: str = ""

    def render(self) -> str:
        line = f"[{self.severity.value:>4}] {self.check}: {self.what}"
        return f"{line}\n       fix: {self.fix}" if self.fix else line


class SecretState(StrEnum):
    PRESENT = "present"
    MISSING = "missing"
    DELETING = "scheduled for deletion"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class AccountFacts:
    """What was read of the target account and region."""

    account: str
    region: str
    concurrency_limit: int
    unreserved_concurrency: int
    bootstrap_status: str | None  # CDKToolkit's status; None: no such stack
    bootstrap_version: int | None  # the SSM parameter; None: missing
    bootstrap_output_version: int | None  # CDKToolkit's BootstrapVersion output
    leftover_bootstrap_resources: tuple[str, ...]  # the staging bucket/repository, if any
    stack_status: str | None  # the prtrace stack's status; None: a first deploy
    secrets: Mapping[str, SecretState] = field(default_factory=dict)
    # The region's AWS-managed prefix lists by service (`s3`, `dynamodb`): their ids.
    prefix_lists: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildHostFacts:
    """What was read of this machine."""

    docker_error: str | None  # None: an engine answered
    machine: str  # `uname -m`
    arm64_emulation: bool  # QEMU's aarch64 binfmt handler registered and enabled
    buildx_platforms: tuple[str, ...] | None  # None: no buildx
    node_major: int | None  # None: no node


# -- the checks: facts in, findings out -------------------------------------------------


def reserved_concurrency(config: StackConfig) -> dict[str, int]:
    """The reservations the stack's functions make, by function."""
    reserved = {name: config.reserved_concurrency(name) for name in FUNCTIONS}
    return {name: value for name, value in reserved.items() if value is not None}


def fitting_settings(config: StackConfig) -> str:
    """The environment that drops every reservation (what a quota below 100 + the
    reservations needs), as a prefix of the `make deploy` command."""
    return " ".join(
        f"{StackConfig.variable(f'{name}_reserved_concurrency')}=none"
        for name in reserved_concurrency(config)
    )


def check_concurrency(config: StackConfig, facts: AccountFacts) -> Finding:
    reserved = reserved_concurrency(config)
    total = sum(reserved.values())
    # A first deploy takes its reservations from what is unreserved now; an update's own
    # are already out of it, so only the quota bounds them.
    pool = facts.unreserved_concurrency if facts.stack_status is None else facts.concurrency_limit
    left = pool - total
    if total == 0 or left >= MIN_UNRESERVED:
        return Finding(
            "concurrency",
            Severity.OK,
            f"quota {facts.concurrency_limit}, {pool} available, the stack reserves {total}",
        )
    shown = ", ".join(f"{name} {value}" for name, value in reserved.items())
    return Finding(
        "concurrency",
        Severity.FAIL,
        f"the functions reserve {total} concurrent executions ({shown}) but only {pool} of "
        f"the account's quota of {facts.concurrency_limit} are available and Lambda keeps "
        f"{MIN_UNRESERVED} unreserved: the deploy would roll back",
        f"{fitting_settings(config)} make deploy STAGE={config.stage}   (or raise the quota: "
        f"aws service-quotas request-service-quota-increase --service-code lambda "
        f"--quota-code {LAMBDA_CONCURRENCY_QUOTA_CODE} --desired-value "
        f"{max(1000, total + MIN_UNRESERVED)} --region {facts.region})",
    )


def check_bootstrap(facts: AccountFacts) -> Finding:
    where = f"aws://{facts.account}/{facts.region}"
    delete = (
        f"aws cloudformation delete-stack --stack-name {BOOTSTRAP_STACK} --region {facts.region}"
    )
    status = facts.bootstrap_status
    if status is None:
        if facts.leftover_bootstrap_resources:
            left = ", ".join(facts.leftover_bootstrap_resources)
            return Finding(
                "bootstrap",
                Severity.FAIL,
                f"{where} has no {BOOTSTRAP_STACK} stack but its retained resources remain "
                f"({left}): `cdk bootstrap` would fail creating them again",
                "delete them (after saving anything you need): "
                + "; ".join(
                    _delete_leftover(name, facts.region)
                    for name in facts.leftover_bootstrap_resources
                ),
            )
        return Finding(
            "bootstrap",
            Severity.OK,
            f"{where} is not bootstrapped yet: `make deploy` runs `cdk bootstrap` first",
        )
    if _IN_FLIGHT.search(status):
        return Finding(
            "bootstrap",
            Severity.FAIL,
            f"{BOOTSTRAP_STACK} is {status}",
            f"wait until it ends: aws cloudformation wait stack-update-complete "
            f"--stack-name {BOOTSTRAP_STACK} --region {facts.region}",
        )
    if status == "UPDATE_ROLLBACK_FAILED":
        return Finding(
            "bootstrap",
            Severity.FAIL,
            f"{BOOTSTRAP_STACK} is {status}: `cdk bootstrap` cannot update it",
            f"aws cloudformation continue-update-rollback --stack-name {BOOTSTRAP_STACK} "
            f"--region {facts.region}",
        )
    if status in _STUCK or status == "ROLLBACK_COMPLETE":
        return Finding(
            "bootstrap",
            Severity.FAIL,
            f"{BOOTSTRAP_STACK} is {status}: `cdk bootstrap` cannot update it",
            f"{delete}, delete its retained staging bucket and repository, then run "
            "`make deploy` again",
        )
    if facts.bootstrap_version is None:
        value = facts.bootstrap_output_version or "<its BootstrapVersion output>"
        return Finding(
            "bootstrap",
            Severity.FAIL,
            f"{BOOTSTRAP_STACK} exists but {BOOTSTRAP_VERSION_PARAMETER} is missing: every "
            "deploy checks it, and `cdk bootstrap` sees no change to make",
            f"aws ssm put-parameter --name {BOOTSTRAP_VERSION_PARAMETER} --type String "
            f"--value {value} --region {facts.region}",
        )
    if facts.bootstrap_version < REQUIRED_BOOTSTRAP_VERSION:
        return Finding(
            "bootstrap",
            Severity.WARN,
            f"bootstrap version {facts.bootstrap_version} is below the "
            f"{REQUIRED_BOOTSTRAP_VERSION} this stack needs: `make deploy` upgrades it "
            "with `cdk bootstrap` (a customised bootstrap template is replaced)",
        )
    return Finding(
        "bootstrap", Severity.OK, f"{BOOTSTRAP_STACK} {status}, version {facts.bootstrap_version}"
    )


def _delete_leftover(name: str, region: str) -> str:
    if name.startswith("s3://"):
        return f"aws s3 rb {name} --force --region {region}"
    return f"aws ecr delete-repository --repository-name {name} --force --region {region}"


def check_stack_state(config: StackConfig, facts: AccountFacts) -> Finding:
    status, name, region = facts.stack_status, config.prefix, facts.region
    if status is None:
        return Finding("stack", Severity.OK, f"{name} does not exist yet: a first deploy")
    if _IN_FLIGHT.search(status):
        return Finding(
            "stack",
            Severity.FAIL,
            f"{name} is {status}",
            f"wait until it ends (aws cloudformation describe-stacks --stack-name {name} "
            f"--region {region})",
        )
    if status == "UPDATE_ROLLBACK_FAILED":
        return Finding(
            "stack",
            Severity.FAIL,
            f"{name} is {status}: no update can start",
            f"aws cloudformation continue-update-rollback --stack-name {name} --region {region}",
        )
    if status in _STUCK:
        return Finding(
            "stack",
            Severity.FAIL,
            f"{name} is {status}",
            f"aws cloudformation delete-stack --stack-name {name} --region {region} (data "
            "resources are retained unless destroy_data_on_delete), then deploy again",
        )
    return Finding("stack", Severity.OK, f"{name} {status}")


def check_secrets(config: StackConfig, facts: AccountFacts) -> list[Finding]:
    if config.judge_mode == "offline":
        return []
    name = config.openai_secret_name
    state = facts.secrets.get(name, SecretState.UNREADABLE)
    create = (
        f"aws secretsmanager create-secret --name {name} --secret-string "
        f'\'{{"api_key": "sk-..."}}\' --region {facts.region}'
    )
    if state is SecretState.PRESENT:
        return [Finding("secrets", Severity.OK, f"the judge's OpenAI key {name} exists")]
    if state is SecretState.DELETING:
        fix = f"aws secretsmanager restore-secret --secret-id {name} --region {facts.region}"
    elif state is SecretState.MISSING:
        fix = create
    else:
        fix = f"allow secretsmanager:DescribeSecret on {name} to the deploying identity"
    if config.judge_mode == "openai":
        return [
            Finding(
                "secrets",
                Severity.FAIL,
                f"judge_mode is openai but the judge's OpenAI key {name} is {state.value}: "
                "every trace would end judge_unavailable",
                f"{fix}   (or deploy with -c judge_mode=offline)",
            )
        ]
    return [
        Finding(
            "secrets",
            Severity.WARN,
            f"the judge's OpenAI key {name} is {state.value}: judge_mode auto scores offline "
            "until it holds a key",
            fix,
        )
    ]


def check_image_build(host: BuildHostFacts) -> list[Finding]:
    """The QA and export images are arm64 and built by `cdk deploy` (its asset step)."""
    if host.docker_error is not None:
        return [
            Finding(
                "image build",
                Severity.FAIL,
                f"no Docker engine answers ({host.docker_error}): `cdk deploy` builds the QA "
                "and export images with it",
                "start one (`sudo systemctl start docker`), or install it: "
                "`sudo apt-get install docker.io`",
            )
        ]
    findings: list[Finding] = []
    native = host.machine in {"aarch64", "arm64"}
    if not native and not host.arm64_emulation:
        findings.append(
            Finding(
                "image build",
                Severity.FAIL,
                f"this {host.machine} machine cannot run arm64 build steps: no QEMU aarch64 "
                f"handler in {BINFMT_AARCH64.parent}",
                "`sudo apt-get install qemu-user-static binfmt-support` (registers "
                "qemu-aarch64), or build on an arm64 machine (`make images` there)",
            )
        )
    if host.buildx_platforms is None:
        findings.append(
            Finding(
                "image build",
                Severity.WARN,
                "no docker buildx: the legacy builder builds the images, without BuildKit's cache",
                "install buildx: `docker-buildx` (Debian 13) or `docker-buildx-plugin` "
                "(Docker's apt repository)",
            )
        )
    elif not native and "linux/arm64" not in host.buildx_platforms:
        findings.append(
            Finding(
                "image build",
                Severity.WARN,
                f"buildx's builder lists no linux/arm64 ({', '.join(host.buildx_platforms)})",
                "`docker buildx create --use --platform linux/arm64` after registering QEMU",
            )
        )
    if not findings:
        how = "natively" if native else "under QEMU"
        findings.append(Finding("image build", Severity.OK, f"Docker builds arm64 {how}"))
    return findings


def check_node(host: BuildHostFacts) -> Finding:
    if host.node_major is None:
        return Finding(
            "node",
            Severity.FAIL,
            "no Node.js: the CDK CLI (npx aws-cdk) runs on it",
            NODE_FIX,
        )
    if host.node_major < MIN_NODE_MAJOR:
        return Finding(
            "node",
            Severity.WARN,
            f"Node.js {host.node_major} is past its end of life",
            NODE_FIX,
        )
    return Finding("node", Severity.OK, f"Node.js {host.node_major}")


PREFIX_LIST_SERVICES: Final = ("s3", "dynamodb")


def check_prefix_lists(config: StackConfig, facts: AccountFacts) -> list[Finding]:
    """The tasks' HTTPS egress goes only to the S3 and DynamoDB prefix lists when the
    settings name them (CloudFormation cannot look them up): unset is a warning with the
    region's ids; an id of another region or service fails (the egress would go nowhere)."""
    findings = []
    for service in PREFIX_LIST_SERVICES:
        setting = f"{service}_prefix_list_id"
        configured: str | None = getattr(config, setting)
        actual = facts.prefix_lists.get(service)
        variable = f"PRTRACE_{setting.upper()}"
        if configured is None:
            fix = f"{variable}={actual}" if actual else f"set {variable} (no list was found)"
            findings.append(
                Finding(
                    setting,
                    Severity.WARN,
                    f"unset: the tasks' HTTPS egress to {service} is open to any address",
                    fix,
                )
            )
        elif actual is not None and configured != actual:
            findings.append(
                Finding(
                    setting,
                    Severity.FAIL,
                    f"{configured} is not com.amazonaws.{facts.region}.{service} ({actual})",
                    f"{variable}={actual}",
                )
            )
        else:
            findings.append(Finding(setting, Severity.OK, configured))
    return findings


def evaluate(
    config: StackConfig, account: AccountFacts | Finding, host: BuildHostFacts
) -> list[Finding]:
    """Every check; `account` is a failed finding when the account could not be read."""
    findings: list[Finding] = []
    if isinstance(account, Finding):
        findings.append(account)
    else:
        findings += [
            check_concurrency(config, account),
            check_bootstrap(account),
            check_stack_state(config, account),
            *check_secrets(config, account),
            *check_prefix_lists(config, account),
        ]
    return [*findings, *check_image_build(host), check_node(host)]


def failed(findings: Sequence[Finding]) -> bool:
    return any(f.severity is Severity.FAIL for f in findings)


# -- the reads --------------------------------------------------------------------------


class AccountReader(Protocol):
    def read(self, config: StackConfig) -> AccountFacts | Finding: ...


class BuildHostReader(Protocol):
    def read(self) -> BuildHostFacts: ...


class Boto3AccountReader:
    """Reads the account through boto3: the caller's credentials and region, or an
    emulator's endpoint. Nothing it reads is a secret's value."""

    def __init__(self, *, endpoint_url: str | None = None, region: str | None = None) -> None:
        self._endpoint_url = endpoint_url
        self._region = region

    def read(self, config: StackConfig) -> AccountFacts | Finding:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        session = boto3.Session(region_name=self._region)
        region = session.region_name
        if not region:
            return Finding(
                "account", Severity.FAIL, "no AWS region configured",
                "export AWS_REGION=<region> (or set one in the AWS profile)",
            )  # fmt: skip

        def client(service: str) -> Any:
            return session.client(service, endpoint_url=self._endpoint_url)  # type: ignore[call-overload]

        try:
            account = client("sts").get_caller_identity()["Account"]
        except (BotoCoreError, ClientError) as error:
            return Finding(
                "account", Severity.FAIL, f"no usable AWS credentials: {error}",
                "`aws configure` or `aws sso login`, or export AWS_PROFILE",
            )  # fmt: skip
        settings = client("lambda").get_account_settings()["AccountLimit"]
        cfn, ssm = client("cloudformation"), client("ssm")
        bootstrap = _stack(cfn, BOOTSTRAP_STACK)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in (bootstrap or {}).get("Outputs", [])}
        stack = _stack(cfn, config.prefix)
        return AccountFacts(
            account=account,
            region=region,
            concurrency_limit=int(settings["ConcurrentExecutions"]),
            unreserved_concurrency=int(settings["UnreservedConcurrentExecutions"]),
            bootstrap_status=bootstrap["StackStatus"] if bootstrap else None,
            bootstrap_version=_int(_parameter(ssm, BOOTSTRAP_VERSION_PARAMETER)),
            bootstrap_output_version=_int(outputs.get("BootstrapVersion")),
            leftover_bootstrap_resources=(
                () if bootstrap else _leftovers(client("s3"), client("ecr"), account, region)
            ),
            stack_status=stack["StackStatus"] if stack else None,
            prefix_lists=_prefix_lists(client("ec2"), region),
            secrets=(
                {}
                if config.judge_mode == "offline"
                else {
                    config.openai_secret_name: _secret(
                        client("secretsmanager"), config.openai_secret_name
                    )
                }
            ),
        )


def _prefix_lists(ec2: Any, region: str) -> dict[str, str]:
    names = {f"com.amazonaws.{region}.{service}": service for service in PREFIX_LIST_SERVICES}
    found = ec2.describe_managed_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": sorted(names)}]
    )["PrefixLists"]
    return {
        names[p["PrefixListName"]]: p["PrefixListId"] for p in found if p["PrefixListName"] in names
    }


def _stack(cfn: Any, name: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        stacks: list[dict[str, Any]] = cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    return stacks[0] if stacks else None


def _parameter(ssm: Any, name: str) -> str | None:
    try:
        return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return None


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _leftovers(s3: Any, ecr: Any, account: str, region: str) -> tuple[str, ...]:
    """The bootstrap stack's retained resources, left behind when it was deleted."""
    from botocore.exceptions import ClientError

    found: list[str] = []
    bucket = f"cdk-{BOOTSTRAP_QUALIFIER}-assets-{account}-{region}"
    try:
        s3.head_bucket(Bucket=bucket)
        found.append(f"s3://{bucket}")
    except ClientError:
        pass
    repository = f"cdk-{BOOTSTRAP_QUALIFIER}-container-assets-{account}-{region}"
    try:
        ecr.describe_repositories(repositoryNames=[repository])
        found.append(repository)
    except ClientError:
        pass
    return tuple(found)


def _secret(secretsmanager: Any, name: str) -> SecretState:
    from botocore.exceptions import ClientError

    try:
        described = secretsmanager.describe_secret(SecretId=name)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            return SecretState.MISSING
        return SecretState.UNREADABLE
    return SecretState.DELETING if described.get("DeletedDate") else SecretState.PRESENT


class LocalBuildHost:
    """Reads this machine: the Docker engine, buildx's builder, QEMU's binfmt handler,
    Node.js."""

    def read(self) -> BuildHostFacts:
        return BuildHostFacts(
            docker_error=_docker_error(),
            machine=platform.machine(),
            arm64_emulation=binfmt_enabled(BINFMT_AARCH64),
            buildx_platforms=buildx_platforms(_output(["docker", "buildx", "inspect"])),
            node_major=node_major(_output(["node", "--version"])),
        )


def _output(argv: list[str], timeout_s: float = 60) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)  # noqa: S603
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _docker_error() -> str | None:
    if shutil.which("docker") is None:
        return "docker is not installed"
    try:
        done = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],  # noqa: S607
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as error:
        return str(error)
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or ["docker info failed"])[-1]
    return None


def binfmt_enabled(handler: Path) -> bool:
    try:
        return handler.read_text().splitlines()[0].strip() == "enabled"
    except (OSError, IndexError):
        return False


def buildx_platforms(inspect_output: str | None) -> tuple[str, ...] | None:
    """The platforms of `docker buildx inspect` (its `Platforms:` line), or None."""
    if inspect_output is None:
        return None
    for line in inspect_output.splitlines():
        if line.strip().startswith("Platforms:"):
            listed = line.split(":", 1)[1]
            return tuple(p.strip().rstrip("*") for p in listed.split(",") if p.strip())
    return ()


def node_major(version_output: str | None) -> int | None:
    match = re.match(r"v?(\d+)\.", (version_output or "").strip())
    return int(match.group(1)) if match else None


# -- the command ------------------------------------------------------------------------


def run(
    config: StackConfig, account_reader: AccountReader, host_reader: BuildHostReader
) -> list[Finding]:
    return evaluate(config, account_reader.read(config), host_reader.read())


def parse_context(pairs: Sequence[str]) -> dict[str, str]:
    context: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"-c {pair!r}: expected name=value")
        context[name] = value
    return context


def main(
    context: list[str] = typer.Option(  # noqa: B008
        [], "-c", "--context", help="A deployment setting, as `cdk deploy -c name=value`."
    ),
    endpoint_url: str = typer.Option(
        "", help="Read an emulator's AWS endpoint instead of AWS (the local cloud)."
    ),
    region: str = typer.Option("", help="The region to deploy to (default: the profile's)."),
) -> None:
    """Check the account and this machine before `cdk bootstrap` and `cdk deploy`."""
    try:
        config = StackConfig.resolve(parse_context(context))
    except ConfigError as error:
        print(error, file=sys.stderr)
        raise typer.Exit(2) from None
    findings = run(
        config,
        Boto3AccountReader(endpoint_url=endpoint_url or None, region=region or None),
        LocalBuildHost(),
    )
    print(f"preflight for {config.prefix}:")
    for finding in findings:
        print(finding.render())
    if failed(findings):
        print("preflight failed: nothing was deployed", file=sys.stderr)
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
