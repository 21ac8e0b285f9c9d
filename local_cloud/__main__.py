"""`make local`: run the local cloud in the foreground until Ctrl-C. `make deploy-local`:
the same, with the stack deployed by the real CDK CLI (`--cdk-cli`)."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import typer
from rich.console import Console

from infra_cdk.assets import ROOT
from local_cloud.cloud import DEFAULT_API_PORT, DEFAULT_AWS_PORT, LocalCloud

console = Console(stderr=True)


def main(
    aws_port: int = typer.Option(DEFAULT_AWS_PORT, help="moto's port (LocalStack's default)."),
    api_port: int = typer.Option(DEFAULT_API_PORT, help="The HTTP API's port."),
    verbose: bool = typer.Option(False, help="Log every request."),
    aws_endpoint: str = typer.Option(
        "",
        envvar="PRTRACE_AWS_ENDPOINT",
        help="Deploy into this emulator (e.g. a LocalStack) instead of starting moto here.",
    ),
    state_dir: Path = typer.Option(  # noqa: B008
        ROOT / ".prtrace", help="Where local.json, logs and the synthesized stack go."
    ),
    cdk_cli: str = typer.Option(
        "",
        help="Deploy with this CDK CLI command (`cdk bootstrap`, `cdk synth`, `cdk deploy` "
        "against the emulator's endpoint), as an operator deploys, instead of the local "
        "cloud's own deployer.",
    ),
) -> None:
    """Start the local cloud, print where it is, and run until Ctrl-C."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    up = threading.Event()
    stop = threading.Event()

    def interrupted(*_: object) -> None:
        stop.set()  # even where a library swallows the interrupt below, the wait ends
        if not up.is_set():
            raise KeyboardInterrupt  # abandon start-up; whatever started is stopped below

    # Handlers of their own, not Python's default: a shell that starts a job in the
    # background leaves SIGINT ignored, and Python then raises no KeyboardInterrupt for it.
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    cloud = LocalCloud(
        aws_port=aws_port,
        api_port=api_port,
        state_dir=state_dir,
        target_endpoint=aws_endpoint or None,
        cdk_cli=cdk_cli or None,
        echo=_show_cli_output if cdk_cli else None,
    )
    try:
        if cdk_cli:
            console.print(f"starting the local cloud; deploying with `{cdk_cli}`")
            info = cloud.start()
        else:
            with console.status("starting the local cloud (synth, deploy, warm-up)…"):
                info = cloud.start()
        up.set()
        console.print(f"[green]ready[/green] in {info.startup_s:.1f} s")
        console.print(f"  API endpoint   {info.endpoint}")
        console.print(f"  AWS endpoint   {info.aws_endpoint}")
        console.print(f"  dev token      {info.token}")
        console.print(f"  written to     {cloud.state_dir / 'local.json'}")
        console.print("Ctrl-C stops it.")
        # A signal the kernel hands to another thread only flags the handler to run: a
        # main thread blocked in an untimed wait would never run it. Wake up to look.
        while not stop.wait(timeout=0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping…")
        cloud.stop()


def _show_cli_output(line: str) -> None:
    console.print(f"  cdk | {line}", style="dim", markup=False, highlight=False, soft_wrap=True)


if __name__ == "__main__":
    typer.run(main)
