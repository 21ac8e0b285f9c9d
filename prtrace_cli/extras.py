"""Commands that need the service's packages say so plainly when the client was installed
without them (`pip install prtrace` is the client only; `prtrace[server]` adds them)."""

from __future__ import annotations

from importlib.util import find_spec

import typer

# What each admin command imports when it runs (pyproject.toml's `server` extra).
NEEDS: dict[str, tuple[str, ...]] = {
    "tokens": ("boto3", "aws_lambda_powertools"),
    "qa": ("packaging", "dependency_groups"),
}


def require_server_packages(command: str) -> None:
    """Exit 2 with one actionable line when a package `command` imports is not installed."""
    missing = [name for name in NEEDS[command] if find_spec(name) is None]
    if missing:
        typer.echo(
            f"error: `prtrace {command}` needs the service's packages "
            f"({', '.join(missing)} not installed): pip install 'prtrace[server]'",
            err=True,
        )
        raise typer.Exit(2)
