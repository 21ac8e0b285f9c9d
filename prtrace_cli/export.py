"""`prtrace export`: the tenant's complete traces as a dataset (docs/exports.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from prtrace_cli.console import LazyConsole, escape
from prtrace_cli.remote import EndpointOption, JsonOption, TokenOption, cli_errors

if TYPE_CHECKING:
    from prtrace.dataset.rows import ExportFilter
    from prtrace_client import PrtraceClient

# Imported by the command, not here: `prtrace --help` must not pay for the client and the
# dataset builders (prtrace_client.export.FORMATS, spelled out).
FORMATS = ("swebench", "events", "parquet", "trajectories")
err = LazyConsole(stderr=True, soft_wrap=True)


def _scores(values: list[str]) -> dict[str, int]:
    from prtrace.judge.rubric import DIMENSION_IDS

    scores: dict[str, int] = {}
    for value in values:
        dimension, _, least = value.partition("=")
        if dimension not in DIMENSION_IDS or not least.isdigit() or int(least) > 5:
            raise typer.BadParameter(
                f"{value!r}: expected DIMENSION=0..5 with a dimension of {', '.join(DIMENSION_IDS)}"
            )
        scores[dimension] = int(least)
    return scores


def export(
    out: Annotated[
        Path, typer.Argument(help="Directory to write the files and manifest.json into.")
    ],
    formats: Annotated[
        list[str] | None,
        typer.Option(
            "--format", help=f"One of {', '.join(FORMATS)}; repeat for more (default: all)."
        ),
    ] = None,
    statuses: Annotated[
        list[str] | None,
        typer.Option("--status", help="Trace status to take; repeatable (default: complete)."),
    ] = None,
    verdicts: Annotated[
        list[str] | None,
        typer.Option(
            "--verdict", help="QA verdict (resolved, unresolved, error, none); repeatable."
        ),
    ] = None,
    min_overall: Annotated[
        float | None, typer.Option("--min-overall", help="Least overall judge score (0..5).")
    ] = None,
    min_scores: Annotated[
        list[str] | None,
        typer.Option(
            "--min-score", help="DIMENSION=N: least score of a judge dimension; repeatable."
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Created at or after (RFC 3339 UTC).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Created before (RFC 3339 UTC).")
    ] = None,
    repos: Annotated[
        list[str] | None,
        typer.Option("--repo", help="Repository URL or owner/name; repeatable."),
    ] = None,
    include_flagged: Annotated[
        bool,
        typer.Option(
            "--include-flagged",
            help="Also take traces whose QA report has tamper flags (the fix may have gamed "
            "its tests); left out by default, and the manifest lists them.",
        ),
    ] = False,
    include_unusable: Annotated[
        bool,
        typer.Option(
            "--include-unusable",
            help="Also take traces whose instance is not usable as it is (no patch, no "
            "target tests, a dirty base, ...); left out by default, and the manifest lists "
            "them with why.",
        ),
    ] = False,
    string_test_lists: Annotated[
        bool,
        typer.Option(
            "--string-test-lists",
            help="Write FAIL_TO_PASS/PASS_TO_PASS as JSON strings, as SWE-bench's published "
            "rows hold them (default: lists).",
        ),
    ] = False,
    on_server: Annotated[
        bool,
        typer.Option(
            "--on-server",
            help="Have the service's export job write the export (for large exports), then "
            "download its files and verify them against the signed manifest.",
        ),
    ] = False,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Export complete traces as SWE-bench-style instances, events JSONL and Parquet."""
    from prtrace.dataset.rows import ExportFilter
    from prtrace_client import PrtraceClient
    from prtrace_client.export import (
        ExportError,
        check_destination,
        check_formats,
        collect,
        write_export,
    )

    chosen = ExportFilter(
        statuses=frozenset(statuses or ["complete"]),
        verdicts=frozenset(verdicts or []),
        min_overall=min_overall,
        min_scores=_scores(min_scores or []),
        since=since,
        until=until,
        repositories=frozenset(repos or []),
        include_flagged=include_flagged,
        include_unusable=include_unusable,
    )
    with cli_errors(ExportError), PrtraceClient(endpoint, token) as client:
        # What would stop the export is found before any trace is read (a server export
        # is written by the service: pyarrow is needed there, not here).
        check_destination(out)
        if not on_server:
            check_formats(formats or FORMATS)
        if on_server:
            manifest = _export_on_server(
                client, chosen, formats or list(FORMATS), out, string_test_lists
            )
        else:
            selection = collect(
                client, chosen, on_trace=lambda t: err.print(f"reading {t}", style="dim")
            )
            manifest = write_export(
                selection,
                out,
                formats=formats or FORMATS,
                chosen=chosen,
                skipped=selection.skipped,
                flagged=selection.flagged,
                unusable=selection.unusable,
                read_artifact=selection.read_artifact,
                string_test_lists=string_test_lists,
            )
    if as_json:
        typer.echo(orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS).decode())
        return
    typer.echo(f"{manifest['trace_count']} traces, {manifest['event_count']} events → {out}")
    for name, entry in sorted(manifest["files"].items()):
        typer.echo(f"  {name}  {entry['rows']} rows  sha256 {entry['sha256']}")
    for item in manifest["skipped"]:
        err.print(f"[yellow]skipped[/yellow] {item['trace_id']}: {escape(item['reason'])}")
    left_out = manifest.get("flagged_left_out") or []  # absent from older servers' exports
    for item in left_out:
        codes = ", ".join(str(code) for code in item["flags"])
        err.print(f"[yellow]left out[/yellow] {item['trace_id']}: tamper flags {escape(codes)}")
    if left_out:
        err.print(
            f"{len(left_out)} traces left out for tamper flags (--include-flagged takes them)"
        )
    unusable = manifest.get("unusable_left_out") or []  # absent from older exports
    for item in unusable:
        reasons = ", ".join(str(reason) for reason in item["reasons"])
        err.print(f"[yellow]left out[/yellow] {item['trace_id']}: not usable ({escape(reasons)})")
    if unusable:
        err.print(f"{len(unusable)} traces left out as not usable (--include-unusable takes them)")
    if manifest.get("flagged_count"):
        count = manifest["flagged_count"]
        err.print(f"{count} exported traces have tamper flags (see qa_tamper_flags)")


def _export_on_server(
    client: PrtraceClient,
    chosen: ExportFilter,
    formats: list[str],
    out: Path,
    string_test_lists: bool,
) -> dict[str, Any]:
    from prtrace_client.export import save_server_export

    described = chosen.describe()
    request = {k: v for k, v in described.items() if v not in (None, [], {})}
    # The defaults are left out, so a server older than them still takes the request.
    for switch in ("include_flagged", "include_unusable"):
        if not request[switch]:
            del request[switch]
    if string_test_lists:
        request["string_test_lists"] = True
    request["formats"] = sorted(set(formats))
    request.setdefault("statuses", ["complete"])
    view = client.start_export(request)
    err.print(f"export {view['export_id']}: the job is running", style="dim")
    done = client.wait_export(str(view["export_id"]))
    return save_server_export(client, done, out)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
