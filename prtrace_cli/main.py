"""`prtrace` admin commands. They talk to the configured AWS endpoint (AWS_ENDPOINT_URL,
AWS_PROFILE/AWS_REGION as usual), so the same commands manage AWS and the local cloud."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from prtrace_cli.console import LazyConsole, escape
from prtrace_cli.export import register as register_export_command
from prtrace_cli.extras import require_server_packages
from prtrace_cli.provenance import register as register_provenance_commands
from prtrace_cli.qa import qa_command
from prtrace_cli.query import register as register_query_command
from prtrace_cli.record import register as register_record_commands
from prtrace_cli.remote import register as register_remote_commands

# Commands import what they use when they run: `prtrace run` is on the path of every
# recorded command, and boto3 alone costs a third of a second to import.
# Never print locals in tracebacks: `create` holds the new token's secret.
app = typer.Typer(
    rich_markup_mode=None,  # plain help: rich's help formatter costs --help 0.1 s of imports
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="prtrace: capture and verify bug-fixing sessions.",
)
tokens = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Create, list and revoke API tokens."
)
app.add_typer(tokens, name="tokens")
app.command("qa")(qa_command)
register_remote_commands(app)
register_record_commands(app)
register_export_command(app)
register_provenance_commands(app)
register_query_command(app)
err = LazyConsole(stderr=True, soft_wrap=True)  # one message, one line, at any width


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"prtrace {version('prtrace')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            typer.echo("prtrace (version unknown: not installed)")
        raise typer.Exit()


@app.callback()
def main(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """prtrace: capture and verify bug-fixing sessions."""


@tokens.callback()
def tokens_group() -> None:
    """Create, list and revoke API tokens (DynamoDB)."""
    require_server_packages("tokens")


TableOption = Annotated[
    str,
    typer.Option(
        "--table", envvar="PRTRACE_TOKENS_TABLE", help="DynamoDB table holding the tokens."
    ),
]


@tokens.command("create")
def create_token(
    tenant: Annotated[str, typer.Option(help="Tenant the token acts for.")],
    scopes: Annotated[
        str, typer.Option(help="Comma-separated: ingest, read, admin.")
    ] = "ingest,read",
    expires_in_days: Annotated[int | None, typer.Option(min=1, max=3650)] = None,
    description: Annotated[str, typer.Option(help="A note for listings.")] = "",
    table: TableOption = "",
) -> None:
    """Create a token and print it on stdout (it is shown only this once)."""
    from prtrace.clock import utc_now
    from prtrace.tokens import issue_token

    now = utc_now()
    expires = None
    if expires_in_days is not None:
        expires = (
            (datetime.now(UTC) + timedelta(days=expires_in_days))
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z")
        )
    try:
        token, record = issue_token(
            tenant,
            [s.strip() for s in scopes.split(",") if s.strip()],
            now=now,
            expires_at=expires,
            description=description,
        )
    except ValueError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    with _aws_errors(table):
        _store(table).put_token(record)
    err.print(
        f"created token {record.token_id} for tenant {tenant} "
        f"({', '.join(record.scopes)}); store it now, it is not shown again"
    )
    typer.echo(token)


@tokens.command("list")
def list_tokens(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's tokens.")] = None,
    table: TableOption = "",
) -> None:
    """List tokens (ids, tenants, scopes and state; never secrets)."""
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    from prtrace.clock import utc_now

    view = Table("token id", "tenant", "scopes", "created", "expires", "state")
    now = utc_now()
    with _aws_errors(table):
        listed = _store(table).list_tokens(tenant)
    for token in listed:
        state = (
            "revoked"
            if token.revoked_at
            else ("expired" if token.expires_at and token.expires_at <= now else "active")
        )
        view.add_row(
            token.token_id,
            token.tenant,
            ",".join(token.scopes),
            token.created_at,
            token.expires_at or "-",
            state,
        )
    # Never cut cells to the terminal (or a pipe's 80 columns): ids are copied into `revoke`.
    console = Console()
    natural = Measurement.get(console, console.options.update_width(10_000), view).maximum
    console.width = max(console.width, natural)
    console.print(view)


@tokens.command("revoke")
def revoke_token(token_id: str, table: TableOption = "") -> None:
    """Revoke a token by id; it stops working once the authorizer cache expires."""
    from prtrace.clock import utc_now
    from prtrace.ports import ConditionFailed

    try:
        with _aws_errors(table):
            record = _store(table).revoke_token(token_id, utc_now())
    except ConditionFailed:
        err.print(f"[red]error:[/red] no token with id {escape(token_id)}")
        raise typer.Exit(1) from None
    typer.echo(f"revoked {record.token_id} at {record.revoked_at}")


@contextmanager
def _aws_errors(table: str) -> Iterator[None]:
    """One clear line instead of a traceback for the usual setup mistakes."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            err.print(
                f"[red]error:[/red] table {escape(table)} not found; check "
                "PRTRACE_TOKENS_TABLE (or --table), AWS_REGION and AWS_ENDPOINT_URL"
            )
        else:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    except BotoCoreError as exc:  # no credentials or region, endpoint unreachable, ...
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None


def _store(table: str) -> TokenStore:
    if not table:
        err.print("[red]error:[/red] set PRTRACE_TOKENS_TABLE or pass --table")
        raise typer.Exit(2)
    from prtrace.adapters.wiring import build_token_store

    return build_token_store(table)


if __name__ == "__main__":
    app()


if TYPE_CHECKING:  # the commands import these when they run (fast --help)
    from prtrace.ports import TokenStore
