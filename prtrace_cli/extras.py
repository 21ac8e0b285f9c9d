"""Commands that need the service's packages say so plainly when the client was installed
without them (`pip install prtrace` is the client only; `prtrace[server]` adds them)."""

from __future__ import annotations

from importlib.util import find_spec

import typer

# What each admin command imports when it runs, and the extras (pyproject.toml) bringing it.
NEEDS: dict[str, tuple[tuple[str, ...], str]] = {
    "tokens": (("boto3", "aws_lambda_powertools"), "server"),
    "qa": (("packaging", "dependency_groups"), "server"),
    "query": (("boto3", "duckdb"), "server,query"),
}


def require_server_packages(command: str) -> None:
    """Exit 2 with one actionable line when a package `command` imports is not installed."""
    packages, extras = NEEDS[command]
    missing = [name for name in packages if find_spec(name) is None]
    if missing:
        typer.echo(
            f"error: `prtrace {command}` needs the service's packages "
            f"({', '.join(missing)} not installed): pip install 'prtrace[{extras}]'",
            err=True,
        )
        raise typer.Exit(2)
