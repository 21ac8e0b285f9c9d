"""The local cloud: the operators' stack running on this machine.

moto's server (all AWS APIs, Step Functions executing for real) on 127.0.0.1:4566, the
synthesized CDK template deployed into it through CloudFormation (by deploy.py, or by the
real CDK CLI: cdk_cli.py), what moto's CloudFormation cannot model supplied by
cdk_bridge.py, Lambda invocations run by warm local workers, ECS tasks by a pluggable
executor, and the HTTP API served by the local gateway; moto_patches.py installs into moto
what the cloud changes of it, and removes it on stop. Every client of the emulator in this
process names its endpoint: the cloud sets no environment variable of the process.
`python -m local_cloud` runs it in the foreground.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from botocore.config import Config

from infra_cdk.assets import ROOT
from infra_cdk.config import BuildSettings
from infra_cdk.viewer_site import VIEWER_ASSETS, VIEWER_PATH, security_headers
from local_cloud import cdk_bridge, moto_patches
from local_cloud.assembly import LOCAL_REGION, StackAssembly, function_layers, synthesize
from local_cloud.cdk_cli import deploy_with_cdk_cli
from local_cloud.deploy import DeployedStack, deploy
from local_cloud.ecs import (
    ContainerExecutor,
    EcsTaskRunner,
    HostProcessExecutor,
    LocalSandboxExecutor,
)
from local_cloud.emulator import emulator_client, moto_server
from local_cloud.http_gateway import LocalHttpApi, routes_from_template
from local_cloud.lambda_runtime import LambdaRuntime
from local_cloud.static_site import StaticSite
from local_cloud.stepfunctions import execution_ended, hand_to_interpreter
from prtrace.adapters.dynamodb import DynamoTokenStore
from prtrace.adapters.wiring import BOTO_CONFIG
from prtrace.clock import utc_now
from prtrace.heap import settle_after_init
from prtrace.tokens import issue_token

log = logging.getLogger("prtrace.local")

DEFAULT_AWS_PORT = 4566  # where LocalStack clients look
DEFAULT_API_PORT = 4567
DEV_TENANT = "dev"


class LocalCloudError(RuntimeError):
    pass


@dataclass
class LocalCloudInfo:
    endpoint: str  # the HTTP API
    token: str  # a development token (tenant "dev", every scope)
    aws_endpoint: str  # moto: boto3, the AWS CLI, localstack-client
    stack: DeployedStack
    startup_s: float

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "endpoint": self.endpoint,
            "token": self.token,
            "aws_endpoint": self.aws_endpoint,
            "region": LOCAL_REGION,
            "stack": self.stack.name,
            "outputs": self.stack.outputs,
        }
        path.write_text(json.dumps(document, indent=2) + "\n")
        path.chmod(0o600)  # holds a token


class LocalCloud:
    def __init__(
        self,
        *,
        aws_port: int = DEFAULT_AWS_PORT,
        api_port: int = DEFAULT_API_PORT,
        state_dir: Path = ROOT / ".prtrace",
        context: dict[str, str] | None = None,
        ecs_executor: ContainerExecutor | None = None,
        qa_backend: str | None = None,
        target_endpoint: str | None = None,
        cdk_cli: str | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        """`target_endpoint`: deploy into another emulator (a LocalStack with an auth token
        and a Docker engine runs the Lambdas itself) instead of starting moto here; only the
        HTTP API gateway then runs locally. `qa_backend`: the sandbox the QA task's tests run
        in here (bwrap, the default, or docker; PRTRACE_LOCAL_QA_BACKEND). `cdk_cli`: the
        command of the CDK CLI that deploys the stack (`cdk bootstrap`, `cdk deploy`) into
        the emulator, as an operator deploys it (cdk_cli.py); without it, the local cloud
        deploys the synthesized template itself (deploy.py). `echo` is shown the CLI's
        output as it comes."""
        self.state_dir = state_dir
        self._aws_port = aws_port
        self._api_port = api_port
        self._context = {
            # No CodeArtifact here: the QA task's dependency step gets no proxy (as before).
            "qa_package_proxy": "false",
            **(context or {"stage": "local", "destroy_data_on_delete": "true"}),
        }
        self._ecs_executor = ecs_executor
        self._qa_backend = qa_backend or BuildSettings.from_env().local_qa_backend
        self._target = target_endpoint
        self._cdk_cli = cdk_cli
        self._echo = echo
        self._moto = ExitStack()
        self._function_layers: dict[str, tuple[Path, ...]] = {}
        self._gateway: LocalHttpApi | None = None
        self._runtime: LambdaRuntime | None = None
        self._aws_endpoint: str | None = None
        self._lambda_client: Any = None
        self.assembly: StackAssembly | None = None
        self.info: LocalCloudInfo | None = None

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> LocalCloudInfo:
        started = time.perf_counter()
        try:
            info = self._start(started)
        except BaseException:
            self.stop()
            raise
        return info

    def _start(self, started: float) -> LocalCloudInfo:
        if self._target is not None:
            return self._start_against_target(self._target, started)
        aws_endpoint = self._moto.enter_context(moto_server(self._aws_port))
        self._aws_endpoint = aws_endpoint
        # moto's backends are process-wide: a cloud started earlier in this process (a test
        # session, the bench) must not leave its stack behind for this one.
        httpx.post(f"{aws_endpoint}/moto-api/reset").raise_for_status()
        httpx.post(
            f"{aws_endpoint}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": True}},
        ).raise_for_status()

        base_env = local_environment(aws_endpoint, LOCAL_REGION)
        self._runtime = LambdaRuntime(
            work_dir=self.state_dir / "lambda",
            log_dir=self.state_dir / "logs",
            base_env={**base_env, "POWERTOOLS_TRACE_DISABLED": "true"},  # no X-Ray daemon here
            # moto's CloudFormation drops a function's Layers; they come from the template.
            layer_dirs_for=lambda name: self._function_layers.get(name, ()),
        )
        ecs_tasks = EcsTaskRunner(
            self._ecs_executor
            or LocalSandboxExecutor(
                HostProcessExecutor(base_env, self.state_dir / "logs"),
                backend=self._qa_backend,
            )
        )
        self._gateway = LocalHttpApi(self._invoke_function, port=self._api_port)
        self._gateway.start()
        self._moto.callback(
            moto_patches.install(
                aws_endpoint=aws_endpoint,
                bridged_types=cdk_bridge.bridged_types(
                    aws_endpoint=aws_endpoint, gateway_url=self._gateway.url
                ),
                invoke_lambda=self._invoke_moto_function,
                ecs_tasks=ecs_tasks,
                execution_ended=execution_ended(self._invoke_function),
            )
        )

        return self._deploy_and_serve(aws_endpoint, started, build_deps=False)

    def _start_against_target(self, endpoint: str, started: float) -> LocalCloudInfo:
        self._aws_endpoint = endpoint
        # The target runs the Lambdas: they need their third-party layer.
        return self._deploy_and_serve(endpoint, started, build_deps=True)

    def _deploy_and_serve(
        self, aws_endpoint: str, started: float, *, build_deps: bool
    ) -> LocalCloudInfo:
        if self._gateway is None:
            self._gateway = LocalHttpApi(self._invoke_function, port=self._api_port)
            self._gateway.start()
        # The trace viewer, as CloudFront serves it on AWS; its page may fetch artifact
        # downloads, which presigned URLs point at the AWS endpoint.
        self._gateway.serve_static(
            StaticSite(VIEWER_PATH, VIEWER_ASSETS, security_headers([_origin(aws_endpoint)]))
        )
        if self._cdk_cli is not None:
            self.assembly, stack = deploy_with_cdk_cli(
                self._cdk_cli,
                aws_endpoint=aws_endpoint,
                outdir=self.state_dir / "cdk.out",
                context=self._context,
                work_dir=self.state_dir,
                log_path=self.state_dir / "logs" / "cdk-cli.log",
                echo=self._echo,
                external=self._target is not None,
            )
        else:
            self.assembly = synthesize(
                self.state_dir / "cdk.out", context=self._context, build_deps=build_deps
            )
            stack = deploy(self.assembly, aws_endpoint=aws_endpoint)
        if self._target is None:
            machines = self.assembly.resources_of_type("AWS::StepFunctions::StateMachine")
            hand_to_interpreter(stack.physical_ids[logical_id] for logical_id in machines)
        self._function_layers = function_layers(self.assembly, stack.physical_ids)
        self._gateway.routes = routes_from_template(self.assembly.template, stack.physical_ids)
        token = self._create_dev_token(stack, aws_endpoint)
        self._wait_ready(self._gateway.url)
        # What start-up built (moto's models, the synthesized stack, imports) stays for the
        # cloud's life; kept out of the cyclic collector's scans, a full collection no longer
        # stops every request of this process for a quarter of a second. Before local.json:
        # a cloud said to be ready has settled (and an interrupt meanwhile still stops it).
        settle_after_init()
        self.info = LocalCloudInfo(
            endpoint=self._gateway.url,
            token=token,
            aws_endpoint=aws_endpoint,
            stack=stack,
            startup_s=time.perf_counter() - started,
        )
        self.info.write(self.state_dir / "local.json")
        return self.info

    def stop(self) -> None:
        if self._gateway is not None:
            self._gateway.stop()
            self._gateway = None
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None
        self._moto.close()
        state = self.state_dir / "local.json"
        if self.info is not None and state.exists():
            state.unlink()

    def __enter__(self) -> LocalCloudInfo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- pieces -----------------------------------------------------------------------

    def _invoke_moto_function(self, function: Any, event: Any) -> tuple[str, bool, str]:
        """What moto's Lambda runs instead of a container (moto_patches)."""
        if self._runtime is None:
            raise LocalCloudError("the local cloud is stopped: no Lambda runtime")
        return self._runtime.invoke_moto_function(function, event)

    def _invoke_function(self, name: str, event: dict[str, Any]) -> tuple[bytes, bool]:
        if self._runtime is not None:
            # The functions run here: hand the event to the function's workers as API
            # Gateway's integration does, without a JSON round trip through the Lambda API
            # (a chunk PUT's event carries the whole body).
            from moto.awslambda.models import lambda_backends
            from moto.core.models import DEFAULT_ACCOUNT_ID

            function = lambda_backends[DEFAULT_ACCOUNT_ID][LOCAL_REGION].get_function(name)
            payload, errored, _ = self._runtime.invoke_moto_function(function, event)
            return payload.encode(), errored
        if self._lambda_client is None:
            assert self._aws_endpoint is not None
            self._lambda_client = emulator_client(
                "lambda",
                self._aws_endpoint,
                LOCAL_REGION,
                config=Config(read_timeout=960, retries={"max_attempts": 1}),
            )
        answer = self._lambda_client.invoke(FunctionName=name, Payload=orjson.dumps(event))
        return answer["Payload"].read(), "FunctionError" in answer

    def _create_dev_token(self, stack: DeployedStack, aws_endpoint: str) -> str:
        token, record = issue_token(
            DEV_TENANT,
            ["ingest", "read", "admin"],
            now=utc_now(),
            description="local cloud development token",
        )
        dynamodb = emulator_client("dynamodb", aws_endpoint, LOCAL_REGION, config=BOTO_CONFIG)
        DynamoTokenStore(dynamodb, stack.outputs["TokensTableName"]).put_token(record)
        return token

    @staticmethod
    def _wait_ready(url: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"{url}/readyz", timeout=10)
                if answer.status_code == 200:
                    return
                last = f"{answer.status_code} {answer.text[:200]}"
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise LocalCloudError(f"the API did not become ready at {url}/readyz: {last}")


def local_environment(endpoint: str, region: str) -> dict[str, str]:
    """What every local process needs to reach the local cloud and nothing of the host's."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
    }


def _origin(url: str) -> str:
    """scheme://host[:port] of a URL (what a CSP source names)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
