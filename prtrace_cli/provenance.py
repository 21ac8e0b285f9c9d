"""`prtrace download ID` (a trace bundle: document, manifest, signature, chunks,
artifacts, results) and `prtrace verify BUNDLE` (offline, with the public key only)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer

from prtrace_cli.console import LazyConsole, escape
from prtrace_cli.remote import EndpointOption, JsonOption, TokenOption, cli_errors

err = LazyConsole(stderr=True, soft_wrap=True)


def download(
    trace_id: Annotated[str, typer.Argument(help="The trace to download (tr_…).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="New directory for the bundle (default: ./TRACE_ID)."),
    ] = None,
    keys_out: Annotated[
        Path | None,
        typer.Option(
            "--keys", help="Also save the API's public keys (GET /v1/keys, JWKS) to this file."
        ),
    ] = None,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Download a complete trace's signed bundle for offline verification."""
    from prtrace_client import PrtraceClient
    from prtrace_client.provenance import download_bundle

    dest = out or Path(trace_id)
    with cli_errors(FileExistsError), PrtraceClient(endpoint, token) as client:
        done = download_bundle(client, trace_id, dest)
        if keys_out is not None:
            keys_out.write_bytes(orjson.dumps(client.public_keys(), option=orjson.OPT_INDENT_2))
    if as_json:
        summary = {"path": str(done.path), "chunks": done.chunks, "artifacts": done.artifacts,
                   "bytes": done.bytes}  # fmt: skip
        typer.echo(orjson.dumps(summary).decode())
        return
    typer.echo(
        f"{trace_id} → {done.path}: {done.chunks} chunks, {done.artifacts} artifacts, "
        f"{done.bytes:,} bytes"
    )


def verify(
    bundle: Annotated[
        Path,
        typer.Argument(
            help="A bundle directory from `prtrace download`, or an export from "
            "`prtrace export --on-server`."
        ),
    ],
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            help="The trusted public key(s): a JWKS (GET /v1/keys), a JWK or a PEM. Required "
            "offline; with --against-service, the service's published keys when absent.",
        ),
    ] = None,
    against_service: Annotated[
        bool,
        typer.Option(
            "--against-service",
            help="For an export written by `prtrace export` (unsigned): read its traces "
            "again through the API, check each against its signed trace manifest, and check "
            "every file holds the bytes the signed traces give.",
        ),
    ] = False,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
    chain_key: Annotated[
        Path | None,
        typer.Option(
            "--chain-key",
            help="The server's integrity key ring (its secret's JSON) to recompute the HMAC "
            "event chain too; never needed for the signature.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Verify a downloaded trace bundle offline: signature, manifest, Merkle root, every
    chunk, artifact and result digest (and the event chain with --chain-key). An export of
    `prtrace export --on-server` is checked against its signed manifest; one of `prtrace
    export` (unsigned) against the service's signed traces with --against-service.

    Exit code 0 when everything verifies, 1 when something does not (each failure says
    what and where), 2 when the key or the bundle cannot be read."""
    from prtrace.integrity import KeyRing
    from prtrace.provenance.manifest import ProvenanceError, load_public_keys
    from prtrace_client.provenance import Verification, verify_bundle

    if key is None and not against_service:
        err.print("[red]error:[/red] --key is required: the public key(s) to trust (GET /v1/keys)")
        raise typer.Exit(2)
    try:
        keys = load_public_keys(key.read_bytes()) if key is not None else []
        ring: KeyRing | None = None
        if chain_key is not None:
            from prtrace.adapters.keys import KeyRingUnavailable, parse_key_ring

            try:
                ring = parse_key_ring(chain_key.read_bytes())
            except KeyRingUnavailable as exc:
                raise ProvenanceError(f"{chain_key}: {exc}") from None
    except (OSError, ProvenanceError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    if not bundle.is_dir():
        err.print(f"[red]error:[/red] {escape(str(bundle))} is not a bundle directory")
        raise typer.Exit(2)
    result: Verification
    if against_service:
        from prtrace_client import PrtraceClient
        from prtrace_client.export import verify_against_service

        with cli_errors(), PrtraceClient(endpoint, token) as client:
            if not keys:
                published = client.public_keys()
                if not published.get("keys"):
                    err.print(
                        "[red]error:[/red] the service publishes no signing key: its traces "
                        "are not signed, so there is nothing to verify against"
                    )
                    raise typer.Exit(2)
                keys = load_public_keys(orjson.dumps(published))
            result = verify_against_service(bundle, client, keys)
    else:
        result = verify_bundle(bundle, keys, ring)
    if as_json:
        typer.echo(orjson.dumps({"ok": result.ok, "passed": result.passed,
                                 "failed": result.failed}).decode())  # fmt: skip
    else:
        for line in result.passed:
            typer.echo(f"ok    {line}")
        for line in result.failed:
            typer.echo(f"FAIL  {line}")
        typer.echo(
            f"verified: {bundle}" if result.ok else f"NOT verified: {len(result.failed)} failures"
        )
    if not result.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("download")(download)
    app.command("verify")(verify)
