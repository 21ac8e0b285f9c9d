"""`prtrace qa BASE FINAL`: the whole QA (safe extraction, sandboxed test runs before and
after, per-test comparison) on two local directories or archives."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from prtrace_cli.console import escape
from prtrace_cli.extras import require_server_packages

LOCAL_TENANT = "local"
LOCAL_TRACE = "tr_local"
EXIT_CODES = {"resolved": 0, "unresolved": 1, "error": 2}
_STYLE = {"resolved": "green", "unresolved": "yellow", "error": "red"}

# prtrace.qa.settings.BackendName, spelled out: that module imports pydantic (`--help` cost).
BackendName = Literal["bwrap", "docker", "container"]


def _shown(text: str) -> str:
    """Repository-controlled text (test ids, paths, details) as one line of plain text:
    rich markup escaped, line breaks shown as \\n."""
    return escape(text.replace("\r", "\\r").replace("\n", "\\n"))


def _classes(report: QAReport) -> dict[str, str]:
    """Each listed test's class. Should a test be in two lists, the more telling one wins
    (FAIL_TO_PASS, then PASS_TO_FAIL, …: written last)."""
    classes: dict[str, str] = {}
    for name, ids in (
        ("FAIL_TO_FAIL", report.fail_to_fail),
        ("PASS_TO_PASS", report.pass_to_pass),
        ("FAIL_TO_SKIPPED", report.fail_to_skipped),
        ("FAIL_TO_ABSENT", report.fail_to_absent),
        ("PASS_TO_FAIL", report.pass_to_fail),
        ("FAIL_TO_PASS", report.fail_to_pass),
    ):
        classes.update(dict.fromkeys(ids, name))
    return classes


def _table(report: QAReport) -> Table:
    from rich.table import Table

    held = report.held is not None
    classes = _classes(report)
    changed = any(test.changed_by_fix for test in report.tests)
    table = Table(title=f"QA ({report.backend} sandbox)")
    table.add_column("test", no_wrap=True)
    names = ["target", "base", "final", *(["held"] if held else []), "class"]
    names += ["changed by fix"] if changed else []
    for name in names:
        table.add_column(name, no_wrap=True)
    for test in report.tests:
        flaky = " (flaky)" if test.flaky else ""
        row = [_shown(test.test_id), "target" if test.target else "", test.before, test.after]
        row += [test.held or "-"] if held else []
        row.append(classes.get(test.test_id, "-") + flaky)
        row += [test.changed_by_fix or ""] if changed else []
        table.add_row(*row)
    return table


def _run_lines(report: QAReport) -> list[str]:
    lines: list[str] = []
    for name, run in (
        ("base", report.base),
        ("final", report.final),
        ("base with final tests", report.base_with_final_tests),
        ("held (the base's tests and harness on the final code)", report.held),
    ):
        if run is None:
            continue
        line = f"{name}: pytest {run.pytest_version or '?'} ({run.pytest_source or '?'})"
        line += f", workspace {run.workspace_install or '?'}"
        if run.collection_errors:
            line += ", could not import: " + ", ".join(run.collection_errors)
        lines.append(escape(line))
        if run.install_detail:
            lines.append(escape(f"  {run.install_detail}"))
    return lines


def _evidence_lines(report: QAReport) -> list[str]:
    """The verdict's evidence as the report states it: targets, resolution, flags, why."""
    lines: list[str] = []
    if report.target_tests or report.target_source != "none":
        lines.append(f"target tests ({len(report.target_tests)}, from {report.target_source}):")
        unresolved = set(report.unresolved_targets)
        for test_id in report.target_tests:
            mark = " [yellow](unresolved)[/]" if test_id in unresolved else ""
            lines.append(f"  {_shown(test_id)}{mark}")
    if report.resolution is not None:
        lines.append(f"resolution: {report.resolution}")
    if report.unresolved_targets:
        lines.append(f"unresolved targets ({len(report.unresolved_targets)}):")
        lines.extend(f"  {_shown(test_id)}" for test_id in report.unresolved_targets)
    for label, paths in (
        ("changed test files", report.changed_test_files),
        ("changed harness files", report.changed_harness_files),
    ):
        if paths:
            lines.append(f"{label}: " + ", ".join(_shown(path) for path in paths))
    if report.flags:
        blocking = len(report.blocking_flags)
        lines.append(f"flags ({len(report.flags)}, {blocking} blocking):")
    for flag in report.flags:
        kind = "[bold red]blocking[/]" if flag.blocking else "[yellow]not blocking[/]"
        lines.append(f"  {flag.code} ({kind}): {_shown(flag.detail)}")
        lines.extend(f"    {_shown(path)}" for path in flag.paths)
    if report.verdict_reason:
        lines.append(f"why: {_shown(report.verdict_reason)}")
    return lines


def print_report(report: QAReport, console: Console) -> None:
    from rich.measure import Measurement

    table = _table(report)
    if report.tests:
        # Never cut test ids (they are copied into pytest -k / node id selections).
        natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
        console.width = max(console.width, natural)
        console.print(table)
    # Lines naming tests or paths are never wrapped either (soft wrap: one line each).
    for line in [*_run_lines(report), *_evidence_lines(report)]:
        console.print(line, soft_wrap=True)
    style = _STYLE[report.verdict]
    line = f"verdict: [bold {style}]{report.verdict}[/]"
    if report.error_reason:
        line += f" ({report.error_reason}): {escape(report.error_detail or '')}"
    else:
        line += (
            f" - {len(report.fail_to_pass)} fail→pass, {len(report.pass_to_fail)} pass→fail, "
            f"{len(report.pass_to_pass)} pass→pass"
        )
        if report.fail_to_absent or report.fail_to_skipped:
            line += (
                f", {len(report.fail_to_absent)} fail→absent, "
                f"{len(report.fail_to_skipped)} fail→skipped"
            )
    console.print(line + f" in {report.duration_ms / 1000:.1f} s")


def qa_command(
    workspace_base: Annotated[
        Path, typer.Argument(exists=True, help="Directory or tar/tar.gz/tar.zst before the fix.")
    ],
    workspace_final: Annotated[
        Path, typer.Argument(exists=True, help="Directory or archive after the fix.")
    ],
    backend: Annotated[
        BackendName | None,
        typer.Option(help="Sandbox backend (default: PRTRACE_SANDBOX_BACKEND or bwrap)."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the QA report as JSON.")
    ] = False,
    reruns: Annotated[
        int | None, typer.Option(min=0, max=5, help="Extra runs to flag flaky tests.")
    ] = None,
    per_test_timeout: Annotated[int | None, typer.Option(min=1, help="Seconds per test.")] = None,
    artifacts_dir: Annotated[
        Path | None, typer.Option(help="Keep logs and JUnit files here (default: discarded).")
    ] = None,
    reproduction: Annotated[
        list[str] | None,
        typer.Option(
            "--reproduction",
            help="A test id the bug's reproduction saw failing (repeatable): the verdict's "
            "target tests. Default: every test failing on the base.",
        ),
    ] = None,
) -> None:
    """Run the repository's tests on both snapshots in the sandbox and print the verdict.
    Exit code: 0 resolved, 1 unresolved, 2 error."""
    require_server_packages("qa")
    from rich.console import Console

    from prtrace.adapters.artifacts import DirectoryArtifactStore
    from prtrace.adapters.sandbox.select import build_sandbox
    from prtrace.qa.local_inputs import store_local_snapshot
    from prtrace.qa.service import QAService
    from prtrace.qa.settings import QASettings
    from prtrace.settings import ConfigurationError

    # Options given on the command line win over PRTRACE_QA_* variables, defaults do not.
    given = {"backend": backend, "reruns": reruns, "per_test_timeout_s": per_test_timeout}
    overrides: dict[str, object] = {k: v for k, v in given.items() if v is not None}
    try:
        settings = QASettings.from_env(**overrides)
    except ConfigurationError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    with tempfile.TemporaryDirectory(prefix="prtrace-qa-") as scratch:
        store = DirectoryArtifactStore(artifacts_dir or Path(scratch))
        base = store_local_snapshot(workspace_base, store, LOCAL_TENANT, LOCAL_TRACE)
        final = store_local_snapshot(workspace_final, store, LOCAL_TENANT, LOCAL_TRACE)
        sandbox, owner = build_sandbox(settings)
        report = QAService(sandbox, store, settings, owner).run(
            LOCAL_TENANT, LOCAL_TRACE, base, final, reproduction=reproduction or ()
        )
    if json_output:
        typer.echo(report.model_dump_json(indent=2))
    else:
        print_report(report, Console())
    raise typer.Exit(EXIT_CODES[report.verdict])


if TYPE_CHECKING:  # the commands import these when they run (fast --help)
    from rich.console import Console
    from rich.table import Table

    from prtrace.qa.report import QAReport
