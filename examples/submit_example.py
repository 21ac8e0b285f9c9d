"""Submit the example trace (or any trace directory) over HTTP to a prtrace endpoint.

    python -m examples.submit_example                      # the running local cloud
    python -m examples.submit_example --endpoint URL --token prt_…  [DIR]

Endpoint and token default to `.prtrace/local.json` (written by `make local`). The
submission goes through the client SDK (prtrace_client.submit.submit_directory): every
POST carries an idempotency key and every request is retried with exponential backoff and
full jitter on connection errors, 429 and 5xx (honouring Retry-After), so running it again
after a failure finishes the same submission instead of starting another. `prtrace submit
DIR` does the same from the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from prtrace_client import PrtraceClient, PrtraceError
from prtrace_client.submit import Submission, submit_directory

EXAMPLE = Path(__file__).resolve().parent / "sample-trace-chunks"
LOCAL_STATE = Path(__file__).resolve().parents[1] / ".prtrace" / "local.json"


def submit_over_http(endpoint: str, token: str, directory: Path = EXAMPLE) -> Submission:
    with PrtraceClient(endpoint, token, user_agent="prtrace-submit-example") as client:
        return submit_directory(client, directory)


def main(
    directory: Path = typer.Argument(EXAMPLE, help="Trace directory to submit."),  # noqa: B008
    endpoint: str = typer.Option("", help="API endpoint (default: the local cloud's)."),
    token: str = typer.Option("", envvar="PRTRACE_TOKEN", help="Bearer token."),
) -> None:
    """Submit a trace directory and print the finalized trace as JSON."""
    if not endpoint or not token:
        if not LOCAL_STATE.exists():
            raise typer.BadParameter(
                "no --endpoint/--token given and no local cloud running (start `make local`)"
            )
        state = json.loads(LOCAL_STATE.read_text())
        endpoint, token = endpoint or state["endpoint"], token or state["token"]
    try:
        submission = submit_over_http(endpoint, token, directory)
    except PrtraceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(submission.finalized, indent=2))


if __name__ == "__main__":
    typer.run(main)
