"""`make deploy-local` as an operator runs it: the real CDK CLI (the Makefile's pinned
`npx` command) bootstraps the local cloud's AWS endpoint and deploys the stack into it;
then the example trace, submitted over HTTP by the example script, completes through that
deployment, and Ctrl-C stops everything.

Needs npx and the npm registry (fetched by `make cdk-cli`, which `make test` runs first);
skipped only when they are missing, and never under CI=true."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from local_cloud.emulator import emulator_client
from prtrace.judge.rubric import DIMENSION_IDS

ROOT = Path(__file__).resolve().parents[2]
TERMINAL = {"complete", "rejected", "failed"}
FAIL_TO_PASS = "tests/test_ranges.py::test_merge_keeps_last_interval"


def operator_environment() -> dict[str, str]:
    """The caller's shell: none of the test session's AWS settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PRTRACE_", "MOTO_"))}


@pytest.fixture(scope="module")
def cdk_cli() -> None:
    fetched = subprocess.run(
        ["make", "-s", "cdk-cli"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    if fetched.returncode != 0:
        reason = f"the CDK CLI cannot be fetched: {fetched.stderr.strip()[-500:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def aws(endpoint: str, service: str) -> Any:
    return emulator_client(service, endpoint, "us-east-1")


@pytest.mark.usefixtures("cdk_cli")
def test_make_deploy_local_deploys_with_the_cdk_cli_and_the_example_trace_completes(
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "state"
    local_json = state_dir / "local.json"
    log_path = tmp_path / "make-deploy-local.log"
    args = f"--aws-port 0 --api-port 0 --state-dir {state_dir}"
    with open(log_path, "wb") as log:
        make = subprocess.Popen(
            ["make", "deploy-local", f"LOCAL_ARGS={args}"],
            cwd=ROOT,
            env=operator_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
    try:
        deadline = time.monotonic() + 300
        while not local_json.exists():
            assert make.poll() is None, log_path.read_text()[-4000:]
            assert time.monotonic() < deadline, "no local.json after 300 s"
            time.sleep(0.5)
        time.sleep(0.2)  # written in one call, but let the writer finish
        state = json.loads(local_json.read_text())

        # The real CLI deployed it: its bootstrap stack, the stack it created by change set,
        # and its own account of both.
        cfn = aws(state["aws_endpoint"], "cloudformation")
        stacks = {s["StackName"]: s for s in cfn.describe_stacks()["Stacks"]}
        assert stacks["CDKToolkit"]["StackStatus"] == "CREATE_COMPLETE"
        assert stacks[state["stack"]]["StackStatus"] == "CREATE_COMPLETE"
        assert state["outputs"]["ApiEndpoint"] == state["endpoint"]
        cli_log = (state_dir / "logs" / "cdk-cli.log").read_text()
        assert "Environment aws://123456789012/us-east-1 bootstrapped" in cli_log
        assert f"✅  {state['stack']}" in cli_log
        assert "Building Docker image" not in cli_log  # found in ECR: no engine, no push

        # The example trace, submitted as a user would, completes through that deployment.
        submitted = subprocess.run(
            [sys.executable, "-m", "examples.submit_example",
             "--endpoint", state["endpoint"], "--token", state["token"]],
            cwd=ROOT, env=operator_environment(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr[-3000:]
        trace_id = json.loads(submitted.stdout)["trace_id"]
        headers = {"authorization": f"Bearer {state['token']}"}
        deadline = time.monotonic() + 180
        while True:
            answer = httpx.get(f"{state['endpoint']}/v1/traces/{trace_id}", headers=headers)
            assert answer.status_code == 200, answer.text
            trace = answer.json()
            if trace["status"] in TERMINAL or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert trace["status"] == "complete", trace
        assert trace["outcome"]["qa"]["verdict"] == "resolved"
        assert trace["outcome"]["qa"]["fail_to_pass"]["ids"] == [FAIL_TO_PASS]
        scored = [score["dimension"] for score in trace["outcome"]["judge"]["scores"]]
        assert sorted(scored) == sorted(DIMENSION_IDS)

        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C
        # make ends as an interrupted job does; the local cloud under it stops cleanly.
        assert make.wait(timeout=30) in (0, -signal.SIGINT), log_path.read_text()[-4000:]
        assert group_ended(make.pid), "processes of `make deploy-local` outlived Ctrl-C"
    finally:
        if make.poll() is None or not group_ended(make.pid, wait_s=0):
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
    assert "stopping…" in log_path.read_text()
    assert not local_json.exists()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{state['endpoint']}/healthz", timeout=2)


def group_ended(pgid: int, wait_s: float = 15) -> bool:
    """No process left in the process group (orphans are reaped by init quickly)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
