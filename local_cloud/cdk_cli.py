"""Deploy the stack into the local cloud with the real CDK CLI, as an operator deploys it to
AWS: `cdk bootstrap`, then `cdk synth` and `cdk deploy` of that cloud assembly, each
against the emulator's AWS endpoint (the CLI's AWS SDK reads AWS_ENDPOINT_URL): the
embedded moto, or an external emulator such as a LocalStack (`--aws-endpoint`).

The CLI runs with dummy credentials and none of the user's AWS profiles, and with its own
CDK_HOME: it caches the account of each access key there, and the same dummy key may
belong to another emulator's account elsewhere. Synth and deploy are two steps so that the
QA image asset can be recorded in the emulator's ECR in between (cdk_bridge.py says why).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from infra_cdk.assets import ROOT
from local_cloud.assembly import LOCAL_ACCOUNT, LOCAL_REGION, StackAssembly, read_assembly
from local_cloud.cdk_bridge import register_container_images
from local_cloud.deploy import DeployedStack, describe_deployed_stack, emulator_account


class CdkCliError(RuntimeError):
    pass


def cli_environment(
    aws_endpoint: str, cdk_home: Path, region: str = LOCAL_REGION, *, build_deps: bool = False
) -> dict[str, str]:
    """`build_deps`: the emulator runs the Lambdas itself (an external one), so they need
    their third-party layer; the embedded one's workers take this environment's."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    environment.update(
        {
            "AWS_ENDPOINT_URL": aws_endpoint,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            # None of the user's profiles, regions or endpoints (files that do not exist).
            "AWS_CONFIG_FILE": str(cdk_home / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(cdk_home / "aws-credentials"),
            "CDK_HOME": str(cdk_home),
            "CDK_DISABLE_CLI_TELEMETRY": "true",
            "CDK_DISABLE_VERSION_CHECK": "true",
            "PRTRACE_LAMBDA_DEPS": "build" if build_deps else "skip",
        }
    )
    return environment


def deploy_with_cdk_cli(
    cli: str,
    *,
    aws_endpoint: str,
    outdir: Path,
    context: dict[str, str],
    work_dir: Path,
    log_path: Path,
    echo: Callable[[str], None] | None = None,
    external: bool = False,
) -> tuple[StackAssembly, DeployedStack]:
    """`cli`: the command that runs the CDK CLI (the Makefile's pinned `npx` command).
    Everything the CLI prints goes to `log_path`, and to `echo` line by line if given.
    `external`: the endpoint is another emulator (a LocalStack), whose Lambdas need their
    dependency layer and whose ECR is a registry the CLI builds and pushes images to; the
    embedded moto's images are recorded in its ECR instead (cdk_bridge.py)."""
    command = shlex.split(cli)
    cdk_home = work_dir / "cdk-home"
    cdk_home.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    environment = cli_environment(aws_endpoint, cdk_home, build_deps=external)
    context_args = [arg for name, value in context.items() for arg in ("-c", f"{name}={value}")]

    def run(*args: str) -> None:
        _run([*command, "--no-notices", *args], environment, log_path, echo)

    # moto's account is known; another emulator says which is its own.
    account = emulator_account(aws_endpoint) if external else LOCAL_ACCOUNT
    run("bootstrap", f"aws://{account}/{LOCAL_REGION}")
    run("synth", "--quiet", "--output", str(outdir), *context_args)
    assembly = read_assembly(outdir)
    if not external:
        register_container_images(
            outdir / f"{assembly.stack_name}.assets.json", aws_endpoint=aws_endpoint
        )
    run("deploy", "--app", str(outdir), "--require-approval", "never", assembly.stack_name)
    return assembly, describe_deployed_stack(assembly.stack_name, aws_endpoint)


def _run(
    argv: list[str],
    environment: dict[str, str],
    log_path: Path,
    echo: Callable[[str], None] | None,
    timeout_s: float = 900,
) -> None:
    shown = " ".join(argv)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {shown}\n")
        log.flush()
        process = subprocess.Popen(  # noqa: S603 - the configured CDK CLI
            argv,
            cwd=ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        timer = threading.Timer(timeout_s, process.kill)
        timer.start()
        tail: list[str] = []
        try:
            assert process.stdout is not None
            for line in process.stdout:
                log.write(line)
                tail = [*tail[-39:], line.rstrip()]
                if echo is not None:
                    echo(line.rstrip())
            code = process.wait()
        finally:
            timer.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()
    if code != 0:
        detail = "\n".join(tail)
        raise CdkCliError(f"`{shown}` failed (exit {code}); log: {log_path}\n{detail}")
